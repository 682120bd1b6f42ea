# Copyright (c) mmsfc contributors. All rights reserved.
from typing import List, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from .irn_edge_head import gn_branch


@MODELS.register_module()
class IRNDisplacementHead(BaseModule):
    """Displacement-field branch of IRN (Ahn et al., CVPR 2019).

    Features 3-5 (strides 8, 16, 16) go through 1x1 conv + GroupNorm + ReLU
    (4 and 5 upsampled x2), are fused at stride 8 and upsampled x2; features
    1-2 (stride 4) are added by concatenation and a 1x1 conv + GroupNorm +
    ReLU + 1x1 conv gives the 2-channel displacement ``(dy, dx)``. IRN uses
    the field for instance masks only; SFC's semantic masks do not use it,
    but it is trained jointly, as by the authors.

    Args:
        in_channels (Sequence[int]): Channels of the five features.
        channels (Sequence[int]): Width of each feature's branch
            (64, 128, 256, 256, 256).
        num_groups (Sequence[int]): GroupNorm groups per branch (8, 16, 16, 16, 16).
        fuse_channels (int): Width of the two fusion layers (256).
        fuse_groups (int): Their GroupNorm groups (16).
        scale_factors (Sequence[float]): Upsampling of each feature's branch:
            features 1-2 to the stride-4 grid, 3-5 to the stride-8 grid
            (1, 1, 1, 2, 2 for strides 4, 4, 8, 16, 16).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (64, 256, 512, 1024, 2048),
                 channels: Sequence[int] = (64, 128, 256, 256, 256),
                 num_groups: Sequence[int] = (8, 16, 16, 16, 16),
                 fuse_channels: int = 256,
                 fuse_groups: int = 16,
                 scale_factors: Sequence[float] = (1, 1, 1, 2, 2),
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if not len(in_channels) == len(channels) == len(num_groups) == len(scale_factors) == 5:
            raise ValueError('IRNDisplacementHead needs five features: in_channels, channels, '
                             'num_groups and scale_factors of length 5')
        self.branches = nn.ModuleList(
            gn_branch(i, c, g, s)
            for i, c, g, s in zip(in_channels, channels, num_groups, scale_factors))
        self.fuse_deep = gn_branch(sum(channels[2:]), fuse_channels, fuse_groups, 2)
        self.fuse = nn.Sequential(
            nn.Conv2d(channels[0] + channels[1] + fuse_channels, fuse_channels, 1, bias=False),
            nn.GroupNorm(fuse_groups, fuse_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(fuse_channels, 2, 1, bias=False))

    def forward(self, feats: List[Tensor]) -> Tensor:
        """Displacements ``(N, 2, h, w)`` on the grid of ``feats[1]``."""
        outs = [branch(x) for branch, x in zip(self.branches, feats)]
        mid_h, mid_w = outs[2].shape[-2:]
        deep = torch.cat([outs[2]] + [o[..., :mid_h, :mid_w] for o in outs[3:]], dim=1)
        height, width = outs[1].shape[-2:]
        deep = self.fuse_deep(deep)[..., :height, :width]
        return self.fuse(torch.cat([outs[0], outs[1], deep], dim=1))
