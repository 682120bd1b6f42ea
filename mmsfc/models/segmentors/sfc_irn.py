# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from ..utils.fuse import FoldedModuleCache


class _StemAndStages(nn.Module):
    """IRN's five backbone features as one module's outputs (what the folded copy runs).

    mmseg's ``ResNet``: the stem after max-pool and the four stages. Any other
    backbone: its own outputs, five maps (e.g. ``EfficientNetLite`` with
    ``out_indices=(1, 2, 3, 4, 6)``, strides 2, 4, 8, 16, 16 at output
    stride 16, with the heads' ``scale_factors`` set to match).
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        net = self.backbone
        if not hasattr(net, 'res_layers'):
            return tuple(net(inputs))
        if net.deep_stem:
            x = net.stem(inputs)
        else:
            x = net.relu(net.norm1(net.conv1(inputs)))
        feats = [net.maxpool(x)]
        for name in net.res_layers:
            feats.append(getattr(net, name)(feats[-1]))
        return tuple(feats)


@MODELS.register_module()
class SFCIRN(BaseSegmentor):
    """Inter-pixel relation network (IRN, Ahn et al., CVPR 2019) as used by SFC.

    A frozen, detached ResNet (BN statistics fixed, no gradient) feeds an
    edge branch (:class:`IRNEdgeHead`) and a displacement branch
    (:class:`IRNDisplacementHead`) on the stride-4 grid; both are trained
    with :class:`IRNAffinityDisplacementLoss` from stage 2's pseudo labels
    packed at stride 4 (``gt_sem_seg`` of shape ``(1, h, w)``).

    SFC's masks use the boundary map only. With ``displacement_head=None``
    the displacement branch is left out (the authors train it, as IRN does
    for instance masks): the backbone is frozen and the branches share no
    parameter, so the edge branch trains and predicts exactly as with it.

    ``predict`` gives the boundary map used by the random walk: the image and
    its horizontal flip are padded on the right and bottom (with 0 after
    normalisation) to ``test_cfg.pad_size`` (at least, and to a multiple of
    16), both maps are cropped to ``(ceil(H / 4), ceil(W / 4))`` and the
    result is ``sigmoid((e + flip(e_flipped)) / 2)``; it is stored in each sample's
    ``edge_map`` (``PixelData`` of shape ``(1, h, w)``). The authors pad to
    512 and would crop larger images; here a larger image is padded to its
    own size instead.

    Switch ``train_cfg`` / ``test_cfg`` ``fuse_bn`` (False; ``PLAIN_TRAIN_CFG``
    / ``PLAIN_TEST_CFG`` are the defaults): the frozen backbone runs as a copy
    with its BatchNorms folded into the convolutions, built on the first batch
    and kept while the backbone's weights are unchanged, i.e. through training
    (:class:`~mmsfc.models.utils.fuse.FoldedModuleCache`; the model's own
    weights are untouched). The features move by float rounding amplified
    by small running variances.

    Args:
        backbone (dict): mmseg ``ResNet`` config (IRN: depth 50, strides
            (1, 2, 2, 1), no dilation, ImageNet weights).
        edge_head (dict): :class:`IRNEdgeHead` config.
        displacement_head (dict, optional): :class:`IRNDisplacementHead`
            config; None leaves the branch out (see above).
        loss_irn (dict): :class:`IRNAffinityDisplacementLoss` config.
        train_cfg (dict, optional): ``fuse_bn`` (False), see above.
        test_cfg (dict, optional): ``pad_size`` (512), ``flip`` (True) and
            ``fuse_bn`` (False), see above.
        data_preprocessor (dict, optional): ``SegDataPreProcessor`` config.
        init_cfg (dict, optional): Initialisation config.
    """

    #: ``train_cfg`` / ``test_cfg`` switches of the plain computation (the defaults).
    PLAIN_TRAIN_CFG = dict(fuse_bn=False)
    PLAIN_TEST_CFG = dict(fuse_bn=False)

    def __init__(self,
                 backbone: ConfigType,
                 edge_head: ConfigType,
                 displacement_head: OptConfigType,
                 loss_irn: ConfigType = dict(type='IRNAffinityDisplacementLoss'),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.edge_head = MODELS.build(edge_head)
        self.displacement_head = MODELS.build(displacement_head) if displacement_head else None
        self.loss_irn = MODELS.build(loss_irn)
        self.train_cfg = {**self.PLAIN_TRAIN_CFG, **(train_cfg or {})}
        self.test_cfg = {**dict(pad_size=512, flip=True), **self.PLAIN_TEST_CFG,
                         **(test_cfg or {})}
        for param in self.backbone.parameters():
            param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # fixed BN statistics, as the authors' FixedBatchNorm
        return self

    @torch.no_grad()
    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Five detached features: stem (after max-pool) and the four stages.

        Args:
            inputs (Tensor): Images ``(N, 3, H, W)``.

        Returns:
            list[Tensor]: Strides 4, 4, 8, 16, 16 for IRN's ResNet-50.
        """
        features = _StemAndStages(self.backbone)
        cfg = self.train_cfg if self.training else self.test_cfg
        if cfg.get('fuse_bn', False):
            cache = self.__dict__.setdefault('_folded_backbone', FoldedModuleCache())
            folded = cache.get(features, inputs)
            if folded is not None:
                features = folded
        return [f.detach() for f in features(inputs)]

    def _forward(self, inputs: Tensor, data_samples: OptConfigType = None
                 ) -> Tuple[Tensor, Optional[Tensor]]:
        """Boundary logits ``(N, 1, h, w)`` and displacements ``(N, 2, h, w)`` (or None)."""
        feats = self.extract_feat(inputs)
        if self.displacement_head is None:
            return self.edge_head(feats), None
        return self.edge_head(feats), self.displacement_head(feats)

    def encode_decode(self, inputs: Tensor, batch_data_samples: SampleList) -> Tensor:
        """Boundary logits ``(N, 1, h, w)``."""
        return self.edge_head(self.extract_feat(inputs))

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """Affinity and displacement losses (the affinity loss alone without the branch).

        Args:
            inputs (Tensor): Crops ``(N, 3, H, W)``.
            data_samples (list[SegDataSample]): ``gt_sem_seg`` ``(1, h, w)``
                on the output grid (:class:`SFCDownscaleSegMap`).
        """
        edge_logits, displacement = self._forward(inputs)
        label = torch.stack([s.gt_sem_seg.data[0] for s in data_samples]).long()
        if label.shape[-2:] != edge_logits.shape[-2:]:
            raise ValueError(
                f'labels of shape {tuple(label.shape[-2:])} do not match the output grid '
                f'{tuple(edge_logits.shape[-2:])}: downscale them by the network stride '
                '(SFCDownscaleSegMap in the pipeline)')
        return self.loss_irn(edge_logits, displacement, label)

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: Optional[SampleList] = None) -> SampleList:
        """Boundary maps (``edge_map``, ``(1, ceil(H/4), ceil(W/4))``) per sample.

        The images of a batch share one size (``(N, 3, H, W)``, unpadded).
        """
        height, width = inputs.shape[-2:]
        pad = max(self.test_cfg['pad_size'], 16 * -(-max(height, width) // 16))
        batch = torch.cat([inputs, inputs.flip(-1)]) if self.test_cfg['flip'] else inputs
        # as the authors: the flipped image is padded on the right too, and its
        # map is cropped to the grid before being flipped back
        batch = F.pad(batch, [0, pad - width, 0, pad - height])
        grid = (-(-height // 4), -(-width // 4))
        logits = self.encode_decode(batch, data_samples)[:, 0, :grid[0], :grid[1]]
        if self.test_cfg['flip']:
            num = inputs.shape[0]
            logits = logits[:num] / 2 + logits[num:].flip(-1) / 2
        edges = torch.sigmoid(logits)
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(inputs.shape[0])]
        for sample, edge in zip(data_samples, edges):
            sample.set_field(PixelData(data=edge[None]), 'edge_map')
        return data_samples
