# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from ..utils.cam_ops import NORM_EPS, l2_normalize


@MODELS.register_module()
class SFCPCM(BaseModule):
    """Pixel correlation module of SFC (docs/method_notes.md §4, paper Eq. 2).

    The guidance ``G = [resize(image), F]``, with ``F`` the backbone feature
    map that feeds the classifier (ResNet-50's last stage ``x4`` in SFC), is
    projected by a 1×1 convolution without bias, L2-normalised per pixel, and
    turned into the affinity

    ``S = ReLU(E^T E)``,  ``T[i, j] = S[i, j] / (sum_i S[i, j] + 1e-5)``,

    which propagates the CAM ``num_steps`` times: ``M_W = CAM · T · T`` (two
    steps in SFC, one in SEAM). Nothing is detached: gradients reach the
    projection, the CAM and the features. The output is not re-normalised.

    Args:
        in_channels (int): Channels of the guidance, image (3) plus ``F``.
            Defaults to ``3 + 2048`` (ResNet-50).
        channels (int): Channels of the projection. Defaults to 2048.
        num_steps (int): Propagation steps. Defaults to 2.
        init_cfg (dict, optional): Initialisation config. The authors use
            PyTorch's default conv init, hence None.
    """

    def __init__(self,
                 in_channels: int = 3 + 2048,
                 channels: int = 2048,
                 num_steps: int = 2,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_steps < 1:
            raise ValueError(f'num_steps must be >= 1, got {num_steps}')
        self.proj = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.num_steps = num_steps

    def affinity(self, image: Tensor, feat: Tensor) -> Tensor:
        """Column-normalised affinity ``T``.

        Args:
            image (Tensor): Normalised image of shape ``(N, 3, H, W)``.
            feat (Tensor): Features ``F`` of shape ``(N, C, h, w)`` on the
                CAM grid.

        Returns:
            Tensor: ``T`` of shape ``(N, hw, hw)``; ``T[:, i, j]`` is the weight
            of source pixel ``i`` in output pixel ``j``.
        """
        affinity, column_sums = self._affinity_and_column_sums(image, feat)
        return affinity / column_sums

    def _affinity_and_column_sums(self, image: Tensor, feat: Tensor) -> Tuple[Tensor, Tensor]:
        """``S`` of shape ``(N, hw, hw)`` and ``sum_i S[:, i, j] + 1e-5`` ``(N, 1, hw)``."""
        if image.shape[1] + feat.shape[1] != self.proj.in_channels:
            raise ValueError(f'SFCPCM.in_channels is {self.proj.in_channels}, but the guidance '
                             f'has {image.shape[1]} image + {feat.shape[1]} feature channels')
        image = F.interpolate(
            image, size=feat.shape[2:], mode='bilinear', align_corners=True)
        embedding = l2_normalize(self.proj(torch.cat([image, feat], dim=1)))
        embedding = embedding.flatten(2)
        # in place: the product's backward needs its inputs, not its output
        affinity = F.relu(torch.bmm(embedding.transpose(1, 2), embedding), inplace=True)
        return affinity, affinity.sum(dim=1, keepdim=True) + NORM_EPS

    def forward(self, cam: Tensor, image: Tensor, feat: Tensor) -> Tensor:
        """Refine ``cam`` with the affinity of ``image`` and ``feat``.

        Args:
            cam (Tensor): CAM of shape ``(N, K+1, h, w)``.
            image (Tensor): Normalised image of shape ``(N, 3, H, W)``.
            feat (Tensor): Features ``F`` of shape ``(N, C, h, w)``.

        Returns:
            Tensor: Refined CAM ``M_W`` of shape ``(N, K+1, h, w)``.
        """
        # cam · T = (cam · S) / column sums: T is never built, so one
        # (N, hw, hw) tensor is allocated (and kept for backward) instead of two.
        affinity, column_sums = self._affinity_and_column_sums(image, feat)
        refined = cam.flatten(2)
        for _ in range(self.num_steps):
            refined = torch.bmm(refined, affinity) / column_sums
        return refined.view(cam.shape)
