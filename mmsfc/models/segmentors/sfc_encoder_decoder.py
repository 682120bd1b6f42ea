# Copyright (c) mmsfc contributors. All rights reserved.
from typing import List, Optional, Sequence

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import add_prefix
from torch import Tensor

from ..utils.fuse import FoldedModuleCache


@MODELS.register_module()
class SFCEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` with DeepLabV2's multi-scale inputs and test-time CRF.

    Multi-scale inputs (``msc_scales``, e.g. (1.0, 0.75, 0.5), as
    deeplab-pytorch's ``MSC``): the image is resized (bilinear) to every scale,
    each copy gives logits, and their pixel-wise maximum (after resizing to
    the first scale's logits) is a further output. Training sums the loss of
    every scale and of the maximum (mmseg resizes logits to the label, where
    deeplab-pytorch resizes labels to the logits); inference uses the maximum.

    Test-time CRF (``test_cfg.crf``, a dict of
    :class:`~mmsfc.postprocess.CRFParams` fields, e.g. those of
    :data:`~mmsfc.postprocess.DEEPLAB_CRF`): the softmax of the final logits
    at the original image size is refined by a dense CRF on the RGB image read
    from ``img_path``; ``pred_sem_seg`` is the CRF's labels.

    Switches, each off by default (the plain computation, ``PLAIN_TRAIN_CFG``
    / ``PLAIN_TEST_CFG``):

    - ``test_cfg.fuse_bn`` (False): inference (under ``torch.no_grad``) runs a
      copy of the backbone with its frozen BatchNorms folded into the
      convolutions, kept while the weights are
      (:class:`~mmsfc.models.utils.fuse.FoldedModuleCache`; the model's own
      weights are never changed). Not exact in float32: the logits move by
      float rounding amplified by small running variances;
    - ``train_cfg.channels_last`` / ``test_cfg.channels_last`` (False): the
      backbone reads its input in ``torch.channels_last``, which every layer
      then keeps; the layout GPU convolutions prefer, in bfloat16 and float16
      above all (slower on CPUs).

    Args:
        msc_scales (Sequence[float], optional): Input scales; None disables.
        **kwargs: :class:`mmseg.models.EncoderDecoder` arguments.
    """

    #: ``train_cfg`` / ``test_cfg`` switches of the plain computation (the defaults).
    PLAIN_TRAIN_CFG = dict(channels_last=False)
    PLAIN_TEST_CFG = dict(fuse_bn=False, channels_last=False)

    def __init__(self, msc_scales: Optional[Sequence[float]] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.msc_scales = tuple(msc_scales) if msc_scales else None
        if 'fuse_bn' in (self.train_cfg or {}):
            raise ValueError('train_cfg.fuse_bn (BatchNorms folded in training) is removed: it '
                             'changed the gradients beyond float rounding')
        self.train_cfg = {**self.PLAIN_TRAIN_CFG, **(self.train_cfg or {})}
        if self.test_cfg is not None:
            for key, value in self.PLAIN_TEST_CFG.items():
                self.test_cfg.setdefault(key, value)

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Backbone (and neck) features of ``inputs`` ``(N, 3, H, W)``."""
        cfg = (self.train_cfg if self.training else self.test_cfg) or {}
        if cfg.get('channels_last', False):
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        backbone = self.backbone
        if self.training:
            self.__dict__.pop('_folded_backbone', None)  # stale after the next update: free it
        elif cfg.get('fuse_bn', False) and not torch.is_grad_enabled():
            cache = self.__dict__.setdefault('_folded_backbone', FoldedModuleCache())
            folded = cache.get(self.backbone, inputs)
            backbone = self.backbone if folded is None else folded
        feats = backbone(inputs)
        return self.neck(feats) if self.with_neck else feats

    def _multi_scale_logits(self, inputs: Tensor) -> List[Tensor]:
        """Logits of every scale, then their maximum, each ``(N, C, h_s, w_s)``."""
        logits = []
        for scale in self.msc_scales:
            scaled = inputs if scale == 1 else F.interpolate(
                inputs, scale_factor=scale, mode='bilinear', align_corners=False)
            logits.append(self.decode_head(self.extract_feat(scaled)))
        size = logits[0].shape[2:]
        resized = [logit if logit.shape[2:] == size else F.interpolate(
            logit, size=size, mode='bilinear', align_corners=False) for logit in logits]
        return logits + [torch.stack(resized).amax(dim=0)]

    def loss(self, inputs: Tensor, data_samples: List[SegDataSample]) -> dict:
        if self.msc_scales is None:
            return super().loss(inputs, data_samples)
        losses = {}
        names = [f'scale{scale:g}' for scale in self.msc_scales] + ['max']
        for name, logits in zip(names, self._multi_scale_logits(inputs)):
            losses.update(add_prefix(self.decode_head.loss_by_feat(logits, data_samples), name))
        return losses

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        if self.msc_scales is None:
            return super().encode_decode(inputs, batch_img_metas)
        logits = self._multi_scale_logits(inputs)[-1]
        return self.decode_head.predict_by_feat(logits, batch_img_metas)

    def postprocess_result(self, seg_logits: Tensor,
                           data_samples: Optional[List[SegDataSample]] = None) -> list:
        data_samples = super().postprocess_result(seg_logits, data_samples)
        crf_cfg = (self.test_cfg or {}).get('crf')
        if crf_cfg is None:
            return data_samples
        # imported here: mmsfc.postprocess depends on mmsfc.models.utils
        from mmsfc.postprocess import CRFParams, crf_probabilities
        params = CRFParams(**crf_cfg)
        for sample in data_samples:
            logits = sample.seg_logits.data
            image = mmcv.imread(sample.img_path, channel_order='rgb')
            if image is None:
                raise ValueError(f'test-time CRF cannot read {sample.img_path}')
            if image.shape[:2] != tuple(logits.shape[1:]):
                raise ValueError(f'test-time CRF: {sample.img_path} is {image.shape[:2]} but '
                                 f'the prediction is {tuple(logits.shape[1:])}')
            probs = logits.float().softmax(dim=0).cpu().numpy()
            labels = crf_probabilities(image, probs, params)
            sample.pred_sem_seg = PixelData(
                data=torch.from_numpy(labels.astype(np.int64))[None].to(logits.device))
        return data_samples
