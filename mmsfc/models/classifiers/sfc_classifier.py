# Copyright (c) mmsfc contributors. All rights reserved.
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from ..utils.cam_ops import (
    label_to_channel_mask,
    normalized_cam_with_background,
)
from ..utils.image_resize import to_device
from .sfc_inference import SFCInferenceMixin

_INFERENCE_MAPS = ('final', 'w', 'p')


@dataclass
class CAMOutputs:
    """Outputs of one forward pass at one scale.

    Attributes:
        logits (Tensor): Classification scores ``s`` of shape ``(N, K)``.
        cam_w (Tensor): PCM-refined CAM ``M_W`` of shape ``(N, K+1, h, w)``.
        cam_p (Tensor, optional): Prototype CAM ``M_P`` of shape
            ``(N, K+1, h, w)``, not max-normalised.
    """
    logits: Tensor
    cam_w: Tensor
    cam_p: Optional[Tensor] = None


@MODELS.register_module()
class SFCClassifier(SFCInferenceMixin, BaseModel):
    """SFC CAM network: backbone, classifier CAM, PCM and prototype branch.

    Training (:meth:`loss`, docs/method_notes.md §6) runs the batch at full scale and at
    a bilinear ×0.5 copy (``align_corners=True``) and returns
    ``L = L_cls + L_DW^P + L_DW^W`` (paper Eq. 8 with the code's weights):
    ``L_cls``, the multi-label soft-margin loss of the GAP logits averaged over
    the two scales, and the consistency terms of ``loss_msdw`` (:class:`MSDWLoss`).

    Inference (:meth:`predict`, docs/method_notes.md §12) runs every scale of
    ``test_cfg.scales`` on the image and its flip (merged by a sum of the
    logits, side features, image and last-stage features), resizes each map
    to the image size, sums over scales and max-normalises per channel. The
    stored maps are ``M' = [M_bg + bg_offset, fg_scale * M_c]`` and the
    prediction is the argmax over background and the image's classes of
    ``M_W' + alpha * M_P'`` (``inference_map='final'``), ``M_W'`` (``'w'``) or
    ``M_P'`` (``'p'``), i.e. paper Table 6.

    Backbone contract. The backbone returns a tuple or list of feature maps
    ``F_1..F_n`` (any ``n >= 1``; a single tensor counts as ``n = 1``), each
    of shape ``(N, C_i, h_i, w_i)``. An entry that is itself a tuple or list,
    e.g. ``(featmap, cls_token)`` of some ViTs, contributes its first element,
    which must be the map; token sequences ``(N, L, C)`` or pooled vectors
    ``(N, C)`` are refused (mmpretrain's ``VisionTransformer`` needs
    ``out_type='featmap'``, ``ConvNeXt`` ``gap_before_final_norm=False``).

    - the **last** map ``F_n`` feeds the 1×1 classifier (``in_channels`` =
      ``C_n``) and, with the image, the PCM guidance (``pcm.in_channels`` =
      ``3 + C_n``); its grid ``(h_n, w_n)`` is the **CAM grid** of the CAM,
      ``M_W``, ``M_P``, the valid-region mask and the seeds (stride 16 for
      ResNet-50 with strides (1, 2, 2, 1));
    - **all** maps feed the prototype branch: side projection ``i`` reads
      ``F_i`` **detached** (``prototype_head.in_channels[i]`` = ``C_i``) and
      is resized bilinearly to the CAM grid.

    Which maps the backbone returns is chosen in its config (``out_indices``,
    ``strides``, a truncated ``arch``); channel counts come from the config
    and are checked against the maps at every forward.

    Data samples carry ``cls_label`` in their metainfo, a multi-hot array of
    shape ``(K,)`` over the foreground classes, and optionally
    ``valid_box = (top, bottom, left, right)``, the region of the input that
    holds the image (the rest is padding; defaults to all).

    ``train_cfg`` and ``test_cfg`` also hold opt-in switches of the
    computation (``FAST_TRAIN_CFG`` / ``FAST_TEST_CFG`` turn on those that
    keep the outputs to float rounding); every default is the plain
    computation (``PLAIN_TRAIN_CFG`` / ``PLAIN_TEST_CFG``). What each switch
    changes and gains: docs/performance.md.

    Args:
        backbone (dict): Backbone config, e.g. mmseg's ``ResNet`` or
            ``mmpretrain.X`` (with ``mmpretrain.models`` in
            ``custom_imports``); see the contract above.
        in_channels (int): Channels ``C_n`` of the backbone's last feature
            map, the input of the 1×1 classifier (2048 for ResNet-50).
        num_classes (int): Classes including background, ``K + 1``.
        pcm (dict): :class:`SFCPCM` config.
        prototype_head (dict): :class:`SFCPrototypeHead` config.
        loss_msdw (dict): :class:`MSDWLoss` config; ``num_classes`` is filled
            with ``K``.
        loss_cls_weight (float): Weight of ``L_cls``. Defaults to 1.
        train_cfg (dict, optional): Switches of :meth:`loss`:
            ``sparse_side_features`` (False), the side projections computed
            only at the pixels their resize to the CAM grid reads
            (:meth:`SFCPrototypeHead.side_features`; float rounding);
            ``channels_last`` (False), the images enter in
            ``torch.channels_last`` memory format (float rounding).
        test_cfg (dict, optional): ``scales`` (default (1.0, 0.5, 1.5, 2.0)),
            ``flip`` (True), ``resize`` ('pil', see :meth:`_rescale`),
            ``inference_map`` ('final'), ``alpha`` (1.0, weight of ``M_P``
            in the final map, Eq. 9), ``bg_offset`` (0.4) and ``fg_scale``
            (2.0), the background rule of docs/method_notes.md §12. Switches:
            ``sparse_side_features`` (False) and ``channels_last`` (False) as
            in ``train_cfg``; ``fuse_bn`` (False), the backbone runs as a
            copy with its frozen BatchNorms folded into the convolutions
            (:class:`~mmsfc.models.utils.fuse.FoldedModuleCache`; not exact:
            on the ResNet-50 config the CAM before PCM moves by about 4e-5);
            ``backbone_autocast`` (None), 'bfloat16' or 'float16' runs the
            backbone under autocast (the heads stay in float32; changes the
            maps). CPU only, ignored on other devices (float rounding):
            ``pcm_symmetric_blocks`` (None), PCM forms its symmetric affinity
            as ``b × b`` blocks, only those on and above the diagonal
            (:func:`~mmsfc.models.necks.pcm.symmetric_propagation`);
            ``cpu_backbone_pixels`` (None), the backbone and the side
            projections of one scale run in equal groups of images of at
            most this many input pixels in all.
        data_preprocessor (dict, optional): ``SegDataPreProcessor`` config.
        init_cfg (dict, optional): Initialisation config.
    """

    #: ``train_cfg`` / ``test_cfg`` switches of the plain computation (the defaults).
    PLAIN_TRAIN_CFG = dict(channels_last=False, sparse_side_features=False)
    PLAIN_TEST_CFG = dict(fuse_bn=False, channels_last=False, backbone_autocast=None,
                          cpu_backbone_pixels=None, pcm_symmetric_blocks=None,
                          sparse_side_features=False)
    #: The switches that keep the outputs equal to the plain ones to float rounding
    #: (``tests/test_models/test_classifiers/test_sfc_exactness.py``), all on.
    FAST_TRAIN_CFG = dict(sparse_side_features=True)
    FAST_TEST_CFG = dict(cpu_backbone_pixels=100000, pcm_symmetric_blocks=3,
                         sparse_side_features=True)
    _TEST_OPTIONS = ('scales', 'flip', 'resize', 'inference_map', 'alpha', 'bg_offset',
                     'fg_scale')
    #: removed switches, with why
    _REMOVED = dict(
        fuse_bn='train_cfg.fuse_bn (BatchNorms folded in training) is removed: on ResNet-50 '
        'it moved the gradients by 0.5 % of their scale',
        freeze_frozen_stages='train_cfg.freeze_frozen_stages (TorchScript copies of the '
        'frozen stages) is removed',
        freeze_backbone='test_cfg.freeze_backbone (a TorchScript copy of the backbone) is '
        'removed',
        cpu_backbone_chunk='test_cfg.cpu_backbone_chunk is replaced by cpu_backbone_pixels '
        '(input pixels per backbone call on CPUs; None: the whole batch)')

    def __init__(self,
                 backbone: dict,
                 in_channels: int = 2048,
                 num_classes: int = 21,
                 pcm: dict = dict(type='SFCPCM'),
                 prototype_head: dict = dict(type='SFCPrototypeHead'),
                 loss_msdw: dict = dict(type='MSDWLoss'),
                 loss_cls_weight: float = 1.0,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.backbone = MODELS.build(backbone)
        self.classifier = nn.Conv2d(in_channels, num_classes - 1, 1, bias=False)
        self.pcm = MODELS.build(pcm)
        self.prototype_head = MODELS.build(prototype_head)
        self.loss_msdw = MODELS.build(dict(loss_msdw, num_classes=num_classes - 1))
        self.loss_cls_weight = loss_cls_weight
        self.train_cfg = dict(self.PLAIN_TRAIN_CFG)
        self.train_cfg.update(self._checked('train_cfg', train_cfg, self.PLAIN_TRAIN_CFG))
        self.test_cfg = dict(scales=(1.0, 0.5, 1.5, 2.0), flip=True, resize='pil',
                             inference_map='final', alpha=1.0, bg_offset=0.4, fg_scale=2.0,
                             **self.PLAIN_TEST_CFG)
        self.test_cfg.update(self._checked('test_cfg', test_cfg,
                                           (*self.PLAIN_TEST_CFG, *self._TEST_OPTIONS)))
        if self.test_cfg['inference_map'] not in _INFERENCE_MAPS:
            raise ValueError(f'test_cfg.inference_map must be one of {_INFERENCE_MAPS}, '
                             f"got {self.test_cfg['inference_map']!r}")
        pixels = self.test_cfg['cpu_backbone_pixels']
        if pixels is not None and (isinstance(pixels, bool) or not isinstance(pixels, (int, float))
                                   or not 1 <= pixels < float('inf')):
            raise ValueError('test_cfg.cpu_backbone_pixels must be None or a finite number >= 1, '
                             f'got {pixels!r}')
        if self.test_cfg['resize'] not in ('pil', 'torch'):
            raise ValueError("test_cfg.resize must be 'pil' or 'torch', "
                             f"got {self.test_cfg['resize']!r}")

    @classmethod
    def _checked(cls, name: str, cfg: Optional[dict], known) -> dict:
        """``cfg`` (None: empty), refused with the key named if a key is unknown."""
        cfg = dict(cfg or {})
        for key in cfg:
            if key in cls._REMOVED:
                raise ValueError(f'{cls._REMOVED[key]}; got {name}.{key}={cfg[key]!r}')
            if key not in known:
                raise ValueError(f'SFCClassifier {name} has no key {key!r}; known: '
                                 f'{", ".join(sorted(known))}')
        return cfg

    # ------------------------------------------------------------------ forward
    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], List[SegDataSample],
                                               Tuple[Tensor, ...]]:
        """Dispatch to :meth:`loss`, :meth:`predict` or :meth:`_forward`."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')

    def _forward(self, inputs: Tensor,
                 data_samples: Optional[List[SegDataSample]] = None) -> Tuple[Tensor, ...]:
        """Single-scale forward without masking.

        Args:
            inputs (Tensor): Normalised images of shape ``(N, 3, H, W)``.
            data_samples: Unused.

        Returns:
            tuple[Tensor]: logits ``(N, K)``, ``M_W`` ``(N, K+1, h, w)`` and
            ``M_P`` ``(N, K+1, h, w)``.
        """
        outputs = self._forward_single_scale(inputs, inputs.new_ones(1, 1, 1, 1))
        return outputs.logits, outputs.cam_w, outputs.cam_p

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone feature maps ``F_1..F_n``, each ``(N, C_i, h_i, w_i)``.

        Reads the backbone's output as the class docstring describes and
        checks that ``F_n`` has ``in_channels`` channels.
        """
        return self._feature_maps(self.backbone(inputs))

    def _feature_maps(self, outputs: Union[Tensor, Sequence]) -> Tuple[Tensor, ...]:
        """Normalise a backbone's output to a tuple of ``(N, C, h, w)`` maps."""
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        if not isinstance(outputs, (tuple, list)) or len(outputs) == 0:
            raise ValueError('SFCClassifier needs a backbone that returns a non-empty tuple '
                             f'or list of feature maps, got {type(outputs).__name__}')
        feats = tuple(out[0] if isinstance(out, (tuple, list)) and len(out) > 0 else out
                      for out in outputs)
        for index, feat in enumerate(feats):
            if not isinstance(feat, Tensor) or feat.dim() != 4:
                shape = tuple(feat.shape) if isinstance(feat, Tensor) else type(feat).__name__
                raise ValueError(
                    f'backbone output {index} is {shape}, but SFCClassifier needs feature '
                    "maps (N, C, h, w) (mmpretrain VisionTransformer: out_type='featmap'; "
                    'ConvNeXt: gap_before_final_norm=False)')
        if feats[-1].shape[1] != self.classifier.in_channels:
            raise ValueError(f'the last backbone feature map has {feats[-1].shape[1]} channels, '
                             f'but SFCClassifier.in_channels is {self.classifier.in_channels}')
        return feats

    def _forward_single_scale(self,
                              inputs: Tensor,
                              channel_mask: Tensor,
                              valid: Optional[Tensor] = None,
                              with_prototypes: bool = True) -> CAMOutputs:
        """Training-style forward (docs/method_notes.md §3-§5).

        The CAM is multiplied by the mask ``V = nearest(valid) * channel_mask``
        before PCM, and the seeds by ``V`` too.

        Args:
            inputs (Tensor): Normalised images of shape ``(N, 3, H, W)``.
            channel_mask (Tensor): ``[1, y]`` of shape ``(N, K+1, 1, 1)``.
            valid (Tensor, optional): Valid region of shape ``(N, 1, H, W)``,
                resized by nearest to the CAM grid. None means all valid.
            with_prototypes (bool): Also compute ``M_P``.
        """
        feats = self.extract_feat(inputs)
        logit_maps = self.classifier(feats[-1])
        mask = channel_mask
        if valid is not None:
            mask = F.interpolate(valid, size=logit_maps.shape[2:], mode='nearest') * mask
        cam = normalized_cam_with_background(logit_maps) * mask
        cam_w = self.pcm(cam, inputs, feats[-1])
        cam_p = None
        if with_prototypes:
            side_feats = self.prototype_head.side_features(
                feats, cam.shape[2:], sparse=self.train_cfg['sparse_side_features'])
            cam_p = self.prototype_head(side_feats, cam_w, mask)
        return CAMOutputs(logit_maps.mean(dim=(2, 3)), cam_w, cam_p)

    # --------------------------------------------------------------- training
    def _labels(self, inputs: Tensor, data_samples: Sequence[SegDataSample]) -> Tensor:
        """Multi-hot foreground labels ``y`` of shape ``(N, K)`` on ``inputs``' device."""
        return to_device(self._host_labels(inputs, data_samples), inputs.device)

    def _host_labels(self, inputs: Tensor, data_samples: Sequence[SegDataSample]) -> Tensor:
        """Multi-hot foreground labels ``y`` of shape ``(N, K)`` on the host."""
        labels = []
        for sample in data_samples:
            if 'cls_label' not in sample:
                raise KeyError("SFCClassifier needs 'cls_label' in the data samples' "
                               "metainfo; add it to PackSegInputs' meta_keys")
            label = torch.as_tensor(sample.cls_label, dtype=inputs.dtype).flatten()
            if label.numel() != self.num_classes - 1:
                raise ValueError(f'cls_label of {sample.get("img_path", "a sample")} has '
                                 f'{label.numel()} entries, expected {self.num_classes - 1}')
            labels.append(label)
        return torch.stack(labels)

    @staticmethod
    def _valid_masks(inputs: Tensor, data_samples: Sequence[SegDataSample]) -> Tensor:
        """Masks of shape ``(N, 1, H, W)``: 1 inside ``valid_box``, else 0."""
        masks = inputs.new_zeros(inputs.shape[0], 1, *inputs.shape[2:])
        for mask, sample in zip(masks, data_samples):
            top, bottom, left, right = sample.get('valid_box', (0, inputs.shape[2], 0,
                                                                inputs.shape[3]))
            mask[:, top:bottom, left:right] = 1
        return masks

    def loss(self, inputs: Tensor, data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """Losses of one training step at both scales (docs/method_notes.md §6).

        Args:
            inputs (Tensor): Normalised images of shape ``(N, 3, H, W)``.
            data_samples (list[SegDataSample]): With ``cls_label`` (and
                optionally ``valid_box``) in their metainfo.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_dw_p``, ``loss_dw_w``.
        """
        labels = self._labels(inputs, data_samples)
        valid = self._valid_masks(inputs, data_samples)
        if self.train_cfg['channels_last']:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        channel_mask = label_to_channel_mask(labels)[:, :, None, None]
        half_inputs = F.interpolate(
            inputs, scale_factor=0.5, mode='bilinear', align_corners=True)

        # the folded inference copy (test_cfg.fuse_bn) goes stale with the update: free it
        self.__dict__.pop('_folded_backbone', None)
        full = self._forward_single_scale(
            inputs, channel_mask, valid, with_prototypes=self.loss_msdw.loss_weight_p > 0)
        # M_P of the half scale enters no loss (docs/method_notes.md §6): not computed.
        half = self._forward_single_scale(half_inputs, channel_mask, valid,
                                          with_prototypes=False)
        loss_cls = (F.multilabel_soft_margin_loss(full.logits, labels) +
                    F.multilabel_soft_margin_loss(half.logits, labels)) / 2
        losses = dict(loss_cls=self.loss_cls_weight * loss_cls)
        losses.update(self.loss_msdw(full.cam_w, full.cam_p, half.cam_w, labels))
        return losses
