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

    def _embedding(self, image: Tensor, feat: Tensor) -> Tensor:
        """Normalised embeddings ``E`` of shape ``(N, channels, hw)``."""
        if image.shape[1] + feat.shape[1] != self.proj.in_channels:
            raise ValueError(f'SFCPCM.in_channels is {self.proj.in_channels}, but the guidance '
                             f'has {image.shape[1]} image + {feat.shape[1]} feature channels')
        image = F.interpolate(
            image, size=feat.shape[2:], mode='bilinear', align_corners=True)
        return l2_normalize(self.proj(torch.cat([image, feat], dim=1))).flatten(2)

    def _affinity_and_column_sums(self, image: Tensor, feat: Tensor) -> Tuple[Tensor, Tensor]:
        """``S`` of shape ``(N, hw, hw)`` and ``sum_i S[:, i, j] + 1e-5`` ``(N, 1, hw)``."""
        embedding = self._embedding(image, feat)
        # in place: the product's backward needs its inputs, not its output
        affinity = F.relu(torch.bmm(embedding.transpose(1, 2), embedding), inplace=True)
        return affinity, affinity.sum(dim=1, keepdim=True) + NORM_EPS

    def forward(self, cam: Tensor, image: Tensor, feat: Tensor,
                symmetric_blocks: int = 1) -> Tensor:
        """Refine ``cam`` with the affinity of ``image`` and ``feat``.

        Args:
            cam (Tensor): CAM of shape ``(N, K+1, h, w)``.
            image (Tensor): Normalised image of shape ``(N, 3, H, W)``.
            feat (Tensor): Features ``F`` of shape ``(N, C, h, w)``.
            symmetric_blocks (int): ``b > 1`` computes ``S`` as ``b × b``
                blocks of which only those on and above the diagonal are
                formed, ``(b + 1) / 2b`` of the products ``E^T E`` (see
                :func:`symmetric_propagation`). Defaults to 1 (all of ``S``).

        Returns:
            Tensor: Refined CAM ``M_W`` of shape ``(N, K+1, h, w)``.
        """
        if symmetric_blocks > 1:
            embedding = self._embedding(image, feat)
            refined = torch.stack([
                symmetric_propagation(one_cam, one_embedding, self.num_steps, symmetric_blocks)
                for one_cam, one_embedding in zip(cam.flatten(2), embedding)])
            return refined.view(cam.shape)
        # cam · T = (cam · S) / column sums: T is never built, so one
        # (N, hw, hw) tensor is allocated (and kept for backward) instead of two.
        affinity, column_sums = self._affinity_and_column_sums(image, feat)
        refined = cam.flatten(2)
        for _ in range(self.num_steps):
            refined = torch.bmm(refined, affinity) / column_sums
        return refined.view(cam.shape)


def _inner_products(left: Tensor, right: Tensor) -> Tensor:
    """``left^T right`` of ``(C, m)`` and ``(C, n)`` columns, ``(m, n)``.

    On CPUs as a 1×1 convolution of ``right`` (an image ``(1, C, n, 1)``) with
    the ``m`` filters ``left^T``, i.e. the same products, which oneDNN runs
    faster than the BLAS ``mm`` on some CPUs (1.5× at ``m = n = 2961,
    C = 2048`` on an AMD EPYC).
    """
    if left.device.type != 'cpu':
        return left.t() @ right
    filters = left.t().reshape(left.shape[1], left.shape[0], 1, 1)
    return F.conv2d(right[None, :, :, None], filters)[0, :, :, 0]


def symmetric_propagation(cam: Tensor, embedding: Tensor, num_steps: int,
                          num_blocks: int) -> Tensor:
    """``cam · T^num_steps`` of one image, forming ``S`` on and above its diagonal only.

    ``S = ReLU(E^T E)`` is symmetric: with the pixels cut into ``b`` ranges
    ``P_1..P_b`` and ``S_uv = S[P_u, P_v]`` formed for ``u <= v`` only, the
    column sums are ``sum_{u <= v} 1^T S_uv + sum_{u > v} S_vu 1`` and a step
    is ``(cam · S)_v = sum_{u <= v} cam_u S_uv + sum_{u > v} cam_u S_vu^T``,
    each divided by its column sum. Equal to the plain computation to float
    rounding.

    Args:
        cam (Tensor): CAM of shape ``(K+1, hw)``.
        embedding (Tensor): Normalised embeddings ``E`` of shape ``(C, hw)``.
        num_steps (int): Propagation steps.
        num_blocks (int): ``b``.

    Returns:
        Tensor: ``(K+1, hw)``.
    """
    length = embedding.shape[1]
    num_blocks = max(1, min(num_blocks, length))
    bounds = [length * index // num_blocks for index in range(num_blocks + 1)]
    parts = [embedding[:, start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]
    blocks = {(u, v): F.relu(_inner_products(parts[u], parts[v]), inplace=True)
              for u in range(num_blocks) for v in range(u, num_blocks)}

    def block(u: int, v: int) -> Tensor:  # S_uv
        return blocks[u, v] if u <= v else blocks[v, u].t()

    column_sums = [sum(block(u, v).sum(dim=0) for u in range(num_blocks)) + NORM_EPS
                   for v in range(num_blocks)]
    refined = [cam[:, start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]
    for _ in range(num_steps):
        refined = [sum(refined[u] @ block(u, v) for u in range(num_blocks)) / column_sums[v]
                   for v in range(num_blocks)]
    return torch.cat(refined, dim=1)
