# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import CrossEntropyLoss
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor


def _mean_over_labelled(loss: nn.Module) -> bool:
    """Whether ``loss`` is mmseg's cross-entropy averaged over the labelled pixels only.

    That loss counts them with ``.item()``; given the count as ``avg_factor``
    it computes the same value without it.
    """
    return (isinstance(loss, CrossEntropyLoss) and loss.avg_non_ignore and not loss.use_sigmoid
            and not loss.use_mask and loss.class_weight is None and loss.reduction == 'mean')


@MODELS.register_module()
class SFCDeepLabV2Head(BaseDecodeHead):
    """DeepLabV2 ASPP head: a **sum** of parallel dilated 3×3 convolutions.

    ``logits = sum_r conv3x3_r(x)`` for the dilation rates ``r`` (6, 12, 18,
    24), each convolution mapping the last backbone stage straight to the class
    logits, with bias, without BN or bottleneck (Chen et al., DeepLabV2;
    docs/method_notes.md §15). Weights ~ N(0, 0.01), biases 0. mmseg's ``ASPPHead`` is
    the DeepLabV3 head (BN, image pooling, concatenation), hence this class.

    The losses (:meth:`loss_by_feat`) are mmseg's, computed without reading a
    value back from the device, so a GPU step is queued to its end without
    waiting.

    Args:
        dilations (Sequence[int]): Dilation rates. Defaults to (6, 12, 18, 24).
        **kwargs: :class:`BaseDecodeHead` arguments; ``channels`` is unused
            (the branches output ``num_classes`` directly) and defaults to
            ``in_channels``, and ``dropout_ratio`` defaults to 0.
    """

    def __init__(self, dilations: Sequence[int] = (6, 12, 18, 24), **kwargs) -> None:
        kwargs.setdefault('channels', kwargs.get('in_channels'))
        kwargs.setdefault('dropout_ratio', 0.0)
        kwargs.setdefault('init_cfg', dict(type='Normal', std=0.01, bias=0, layer='Conv2d'))
        super().__init__(**kwargs)
        del self.conv_seg  # the branches are the classifier
        self.dilations = tuple(dilations)
        self.aspp = nn.ModuleList(
            nn.Conv2d(self.in_channels, self.out_channels, 3, padding=rate, dilation=rate,
                      bias=True) for rate in self.dilations)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Logits of shape ``(N, num_classes, h, w)`` from the selected stage."""
        x = self._transform_inputs(inputs)
        if self.dropout is not None:
            x = self.dropout(x)
        logits = self.aspp[0](x)
        for branch in self.aspp[1:]:
            logits = logits + branch(x)
        return logits

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """The losses and ``acc_seg`` of :meth:`BaseDecodeHead.loss_by_feat`, sync-free.

        Same values (to float rounding, tested), two reads from the device
        fewer per call:

        - a cross-entropy averaged over the labelled pixels
          (``avg_non_ignore=True``) gets their number ``n`` as a tensor
          ``avg_factor``: ``sum_i loss_i / (n + eps)``, where mmseg counts
          ``n`` with ``.item()``;
        - ``acc_seg = 100 * (correct + eps) / (n + eps)``, the top-1 accuracy
          over the labelled pixels, counts with a mask where mmseg selects
          them by boolean indexing (a ``nonzero``).

        A head with a pixel ``sampler`` uses mmseg's method as it is.

        Args:
            seg_logits (Tensor): Logits ``(N, C, h, w)``.
            batch_data_samples (list[SegDataSample]): Samples with
                ``gt_sem_seg`` ``(1, H, W)``.

        Returns:
            dict[str, Tensor]: Each loss (by ``loss_name``) and ``acc_seg``
            of shape ``(1,)``.
        """
        if self.sampler is not None:
            return super().loss_by_feat(seg_logits, batch_data_samples)
        seg_label = self._stack_batch_gt(batch_data_samples).squeeze(1)  # (N, H, W)
        seg_logits = resize(seg_logits, size=seg_label.shape[1:], mode='bilinear',
                            align_corners=self.align_corners)
        labelled = seg_label != self.ignore_index
        num_labelled = labelled.sum()
        losses = {}
        decoders = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) else [
            self.loss_decode]
        for loss_decode in decoders:
            extra = dict(avg_factor=num_labelled) if _mean_over_labelled(loss_decode) else {}
            value = loss_decode(seg_logits, seg_label, weight=None,
                                ignore_index=self.ignore_index, **extra)
            name = loss_decode.loss_name
            losses[name] = losses[name] + value if name in losses else value
        eps = torch.finfo(torch.float32).eps
        correct = ((seg_logits.detach().argmax(dim=1) == seg_label) & labelled).sum()
        losses['acc_seg'] = ((correct + eps) * (100.0 / (num_labelled + eps))).reshape(1)
        return losses
