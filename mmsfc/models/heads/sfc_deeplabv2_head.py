# Copyright (c) mmsfc contributors. All rights reserved.
from typing import List, Sequence

import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class SFCDeepLabV2Head(BaseDecodeHead):
    """DeepLabV2 ASPP head: a **sum** of parallel dilated 3×3 convolutions.

    ``logits = sum_r conv3x3_r(x)`` for the dilation rates ``r`` (6, 12, 18,
    24), each convolution mapping the last backbone stage straight to the class
    logits, with bias, without BN or bottleneck (Chen et al., DeepLabV2;
    docs/method_notes.md §15). Weights ~ N(0, 0.01), biases 0. mmseg's ``ASPPHead`` is
    the DeepLabV3 head (BN, image pooling, concatenation), hence this class.

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
