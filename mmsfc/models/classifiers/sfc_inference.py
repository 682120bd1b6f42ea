# Copyright (c) mmsfc contributors. All rights reserved.
"""Multi-scale + flip inference of the SFC CAM network (docs/method_notes.md §12)."""
from collections import defaultdict
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData
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


class SFCInferenceMixin:
    """:meth:`predict` of :class:`~mmsfc.models.SFCClassifier`.

    Expects of the class it is mixed into: ``backbone``, ``classifier``,
    ``pcm``, ``prototype_head``, ``data_preprocessor``, the validated
    ``test_cfg`` and the methods ``_feature_maps`` (backbone output to a tuple
    of feature maps) and ``_host_labels`` (``(N, K)`` image labels on the host).
    """

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
