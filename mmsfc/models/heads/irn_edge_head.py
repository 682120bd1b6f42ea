# Copyright (c) mmsfc contributors. All rights reserved.
from typing import List, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor


def gn_branch(in_channels: int, channels: int, num_groups: int, scale: float = 1) -> nn.Sequential:
    """1x1 conv (no bias) -> GroupNorm -> [bilinear x scale] -> ReLU, as in IRN."""
    layers = [nn.Conv2d(in_channels, channels, 1, bias=False), nn.GroupNorm(num_groups, channels)]
    if scale != 1:
        layers.append(nn.Upsample(scale_factor=scale, mode='bilinear', align_corners=False))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@MODELS.register_module()
class IRNEdgeHead(BaseModule):
    """Class-boundary branch of IRN (Ahn et al., CVPR 2019).

    Each of the five backbone features (stem after max-pool, stages 1-4) goes
    through a 1x1 conv + GroupNorm, is upsampled to the stride-4 grid of the
    second feature (bilinear, then cropped) and passed through ReLU; a 1x1
    conv with bias fuses the concatenation into one boundary logit.

    Args:
        in_channels (Sequence[int]): Channels of the five features (ResNet-50:
            64, 256, 512, 1024, 2048).
        channels (int): Width of each branch (32).
        num_groups (int): GroupNorm groups (4).
        scale_factors (Sequence[float]): Upsampling of each feature to the
            stride-4 grid (1, 1, 2, 4, 4 for strides 4, 4, 8, 16, 16).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (64, 256, 512, 1024, 2048),
                 channels: int = 32,
                 num_groups: int = 4,
                 scale_factors: Sequence[float] = (1, 1, 2, 4, 4),
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if len(in_channels) != len(scale_factors):
            raise ValueError(f'in_channels {in_channels} and scale_factors {scale_factors} '
                             'differ in length')
        self.branches = nn.ModuleList(
            gn_branch(c, channels, num_groups, s) for c, s in zip(in_channels, scale_factors))
        self.fuse = nn.Conv2d(channels * len(in_channels), 1, 1, bias=True)

    def forward(self, feats: List[Tensor]) -> Tensor:
        """Boundary logits ``(N, 1, h, w)`` on the grid of ``feats[1]``."""
        height, width = feats[1].shape[-2:]
        outs = [branch(x)[..., :height, :width] for branch, x in zip(self.branches, feats)]
        return self.fuse(torch.cat(outs, dim=1))
