# Copyright (c) mmsfc contributors. All rights reserved.
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from ..utils.cam_ops import (
    background_rule,
    channel_argmax,
    label_to_channel_mask,
    max_normalize,
    normalized_cam_with_background,
)
from ..utils.fuse import FoldedModuleCache
from ..utils.image_resize import host_pixels, resize_normalized, to_device

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
class SFCClassifier(BaseModel):
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

    # -------------------------------------------------------------- inference
    def _predict_scale(self, images: Tensor, label_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """``M_W`` and ``M_P`` of same-sized images at one scale (docs/method_notes.md §12).

        With ``test_cfg.flip`` the images and their horizontal flips run as
        one batch, and each image is merged with its flip by a **sum** (the
        flipped half flipped back) of the classifier logits, the side
        features, the image and the last-stage features, before
        normalisation, PCM and prototypes. The CAM is not label-masked before
        PCM; seeds are masked by the label.

        Args:
            images (Tensor): Normalised images of shape ``(n, 3, H_s, W_s)``.
            label_mask (Tensor): ``[1, y]`` of shape ``(n, K+1, 1, 1)``.

        Returns:
            tuple[Tensor, Tensor]: ``M_W`` and ``M_P``, each of shape
            ``(n, K+1, h_s, w_s)``.
        """
        flip = self.test_cfg['flip']
        num_images = images.shape[0]
        batch = torch.cat([images, images.flip(-1)]) if flip else images
        parts = [self._grid_features(part) for part in batch.split(self._backbone_chunk(batch))]
        logit_maps, side_feats, last_feat = (
            part[0] if len(parts) == 1 else torch.cat(part) for part in zip(*parts))
        if flip:
            logit_maps, side_feats, last_feat = (
                t[:num_images] + t[num_images:].flip(-1)
                for t in (logit_maps, side_feats, last_feat))
            # the image merged with its flip flipped back: exactly 2 * image
            images = images * 2
        cam = normalized_cam_with_background(logit_maps)
        blocks = self.test_cfg['pcm_symmetric_blocks'] if images.device.type == 'cpu' else None
        cam_w = self.pcm(cam, images, last_feat, symmetric_blocks=blocks or 1)
        cam_p = self.prototype_head(side_feats, cam_w, label_mask)
        return cam_w, cam_p

    def _backbone_chunk(self, batch: Tensor) -> int:
        """Images per backbone call for ``batch`` ``(n, 3, H, W)``: ``cpu_backbone_pixels``.

        On CPUs with a budget ``P``: ``c = ceil(n H W / P)`` calls (at most
        ``n``) of ``ceil(n / c)`` images, i.e. as few calls as the budget
        allows, balanced; otherwise one call of all ``n``.
        """
        budget = self.test_cfg['cpu_backbone_pixels']
        num_images = batch.shape[0]
        if batch.device.type != 'cpu' or budget is None:
            return num_images
        calls = min(max(-(-num_images * batch.shape[2] * batch.shape[3] // int(budget)), 1),
                    num_images)
        return -(-num_images // calls)

    def _grid_features(self, batch: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """What inference keeps of the backbone, all on the CAM grid ``(h, w)``.

        Args:
            batch (Tensor): Backbone input of shape ``(n, 3, H, W)``.

        Returns:
            tuple[Tensor, Tensor, Tensor]: The classifier logits ``(n, K, h, w)``,
            the side features ``Phi`` ``(n, C_side, h, w)`` and the last feature
            map ``F_n`` ``(n, C_n, h, w)``.
        """
        backbone = self._inference_backbone(batch)
        if self.test_cfg['channels_last']:
            batch = batch.contiguous(memory_format=torch.channels_last)
        dtype = self.test_cfg['backbone_autocast']
        with torch.autocast(batch.device.type, dtype=getattr(torch, dtype or 'float32'),
                            enabled=bool(dtype)):
            feats = self._feature_maps(backbone(batch))
        if dtype:
            feats = tuple(feat.float() for feat in feats)
        logit_maps = self.classifier(feats[-1])
        side_feats = self.prototype_head.side_features(
            feats, logit_maps.shape[2:], sparse=self.test_cfg['sparse_side_features'])
        return logit_maps, side_feats, feats[-1]

    def _inference_backbone(self, batch: Tensor) -> nn.Module:
        """The backbone that inference runs on ``batch`` ``(n, 3, H, W)``.

        ``self.backbone``, or with ``test_cfg.fuse_bn`` under ``torch.no_grad``
        a cached copy with its frozen BatchNorms folded into the convolutions
        (:class:`FoldedModuleCache`: rebuilt when the weights change, never
        saved; the backbone itself when a BN trains or there is none).
        """
        if not self.test_cfg['fuse_bn'] or torch.is_grad_enabled():
            return self.backbone
        cache = self.__dict__.setdefault('_folded_backbone', FoldedModuleCache())
        folded = cache.get(self.backbone, batch)
        return self.backbone if folded is None else folded

    def _rescale(self, images: Tensor, size: Tuple[int, int],
                 pixels: Optional[np.ndarray] = None) -> Tensor:
        """Normalised images ``(n, 3, H, W)`` at ``size`` for a test scale, resized by
        ``test_cfg.resize`` (see :func:`~mmsfc.models.utils.image_resize.resize_normalized`)."""
        return resize_normalized(images, size, self.data_preprocessor.mean,
                                 self.data_preprocessor.std, self.test_cfg['resize'], pixels)

    def _background_rule(self, cam: Tensor) -> Tensor:
        """``M' = [M_bg + bg_offset, fg_scale * M_c]`` (docs/method_notes.md §12)."""
        return background_rule(cam, self.test_cfg['bg_offset'], self.test_cfg['fg_scale'])

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None) -> List[SegDataSample]:
        """Multi-scale + flip CAMs and their argmax (docs/method_notes.md §12).

        Each scale ``s`` resizes the image to ``(round(H s), round(W s))``
        (see :meth:`_rescale`). Images of equal ``img_shape`` run through every
        scale as one batch.

        Args:
            inputs (Tensor): Normalised images of shape ``(N, 3, H, W)``
                (padded to the largest image of the batch).
            data_samples (list[SegDataSample]): With ``cls_label``,
                ``img_shape`` and ``ori_shape`` in their metainfo.

        Returns:
            list[SegDataSample]: Each with ``seg_logits`` (the combined map
            ``(K+1, H, W)``, zero for absent classes), ``pred_sem_seg``
            (``(1, H, W)``), and ``cam_w`` / ``cam_p`` holding the
            max-normalised ``M_W`` and ``M_P`` (``(K+1, H, W)``, before the
            background rule, zero for absent classes).
        """
        # on the host (NumPy): which classes to compute is known without reading the device
        host_masks = label_to_channel_mask(self._host_labels(inputs, data_samples))
        label_masks = to_device(host_masks, inputs.device)
        host_masks = host_masks.numpy()
        groups = defaultdict(list)  # images of one size run as one batch
        for index, sample in enumerate(data_samples):
            groups[tuple(sample.metainfo.get('img_shape', inputs.shape[2:])[:2])].append(index)
        for (height, width), indices in groups.items():
            cam_w, cam_p = self._multi_scale_cams(inputs[indices, :, :height, :width],
                                                  label_masks[indices, :, None, None],
                                                  host_masks[indices])
            for index, one_w, one_p in zip(indices, cam_w, cam_p):
                sample = data_samples[index]
                ori_shape = tuple(sample.metainfo.get('ori_shape', (height, width))[:2])
                if ori_shape != (height, width):
                    one_w, one_p = (F.interpolate(m[None], size=ori_shape, mode='bilinear',
                                                  align_corners=False)[0]
                                    for m in (one_w, one_p))
                self._pack_prediction(sample, one_w, one_p, host_masks[index])
        return data_samples

    def _multi_scale_cams(self, images: Tensor, label_mask: Tensor,
                          host_mask: np.ndarray) -> Tuple[Tensor, Tensor]:
        """Sum over the test scales, then per-channel max normalisation (docs/method_notes.md §12).

        Nothing is read back from the device: the image's pixels are copied
        to the host once, before any scale runs, so on a GPU the host resizes
        of the next scales overlap the queued work of the previous ones.

        Args:
            images (Tensor): Normalised images of shape ``(n, 3, H, W)``.
            label_mask (Tensor): ``[1, y]`` of shape ``(n, K+1, 1, 1)``.
            host_mask (np.ndarray): The same ``(n, K+1)`` on the host.

        Returns:
            tuple[Tensor, Tensor]: ``M_W`` and ``M_P`` of shape ``(n, K+1, H, W)``,
            zero for absent classes.
        """
        height, width = images.shape[2:]
        # Only the channels of classes some image has are resized, summed and
        # normalised: the others end as zeros (the same maps, less work).
        present = to_device(torch.from_numpy(np.flatnonzero(host_mask.max(axis=0))),
                             images.device)
        sizes = [(round(height * scale), round(width * scale))
                 for scale in self.test_cfg['scales']]
        pixels = None
        if self.test_cfg['resize'] == 'pil' and any(size != (height, width) for size in sizes):
            pixels = host_pixels(images, self.data_preprocessor.mean, self.data_preprocessor.std)
        total = None
        for size in sizes:
            scaled = images if size == (height, width) else self._rescale(images, size, pixels)
            # M_W and M_P side by side: one resize, one sum
            both = torch.cat([cam.index_select(1, present)
                              for cam in self._predict_scale(scaled, label_mask)], dim=1)
            both = F.interpolate(both, size=(height, width), mode='bilinear',
                                 align_corners=False)
            total = both if total is None else total.add_(both)
        total = max_normalize(total)
        mask = label_mask.index_select(1, present)
        total.mul_(torch.cat([mask, mask], dim=1))
        maps = []
        for part in total.chunk(2, dim=1):
            full = part.new_zeros(part.shape[0], label_mask.shape[1], height, width)
            maps.append(full.index_copy_(1, present, part))
        return tuple(maps)

    def _pack_prediction(self, sample: SegDataSample, cam_w: Tensor, cam_p: Tensor,
                         label_mask: np.ndarray) -> SegDataSample:
        """Combine the maps as configured and store them in ``sample``.

        Args:
            cam_w, cam_p (Tensor): Max-normalised maps of shape ``(K+1, H, W)``.
            label_mask (np.ndarray): ``[1, y]`` of shape ``(K+1,)``.
        """
        inference_map = self.test_cfg['inference_map']
        # Absent classes score 0: the rule and the argmax run on the image's
        # classes (background first), the others are zeros.
        present = to_device(torch.from_numpy(np.flatnonzero(label_mask)), cam_w.device)
        present_w, present_p = (cam.index_select(0, present) for cam in (cam_w, cam_p))
        if inference_map == 'w':
            scores = self._background_rule(present_w)
        elif inference_map == 'p':
            scores = self._background_rule(present_p)
        else:
            scores = self._background_rule(present_w) + \
                self.test_cfg['alpha'] * self._background_rule(present_p)
        combined = scores.new_zeros(cam_w.shape).index_copy_(0, present, scores)
        # Scores are >= 0 and the background is >= bg_offset > 0, so an absent
        # class (score 0) could never win the argmax over all classes either.
        sample.set_data(dict(
            seg_logits=PixelData(data=combined),
            pred_sem_seg=PixelData(data=present[channel_argmax(scores, keepdim=True)]),
            cam_w=PixelData(data=cam_w),
            cam_p=PixelData(data=cam_p)))
        # the rule behind pred_sem_seg, for SFCCAMMetric / the pseudo-label stage
        sample.set_metainfo(dict(cam_rule={k: self.test_cfg[k]
                                           for k in ('alpha', 'bg_offset', 'fg_scale')}))
        return sample
