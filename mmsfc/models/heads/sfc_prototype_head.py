# Copyright (c) mmsfc contributors. All rights reserved.
from functools import partial
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from ..utils.cam_ops import l2_normalize, masked_prototypes, prototype_cam, seed_masks
from ..utils.sparse_resize import resize_pointwise


def _project(conv: nn.Conv2d, feat: Tensor) -> Tensor:
    """A side projection: the 1×1 conv, L2-normalised per pixel."""
    return l2_normalize(conv(feat))


@MODELS.register_module()
class SFCPrototypeHead(BaseModule):
    """Prototype branch of SFC (docs/method_notes.md §5, paper Eq. 3-4).

    Side projections ``L(F_1..F_n)``: one 1×1 conv without bias per backbone
    feature map (four ResNet stages in SFC; any number ``n >= 1`` here) on the
    **detached** map, each L2-normalised per pixel and resized (bilinear,
    ``align_corners=False``) to the CAM grid, concatenated into ``Phi`` of
    shape ``(N, sum(channels), h, w)``. Only the projections are trained by
    this branch; the backbone never gets its gradient.

    Seeds: argmax of ``M_W`` with the background multiplied by
    ``bg_seed_scale``, one-hot, times the mask. Prototypes are masked sums over
    ``Phi`` (a batched matrix product), and the prototype CAM is
    ``M_P = ReLU(cos(p_k, Phi))``. An empty seed gives a zero map.

    Args:
        in_channels (Sequence[int]): Channels ``C_i`` of the backbone's feature
            maps, one entry per map (ResNet-50: (256, 512, 1024, 2048)).
        channels (Sequence[int]): Output channels of each side projection,
            as many entries as ``in_channels``.
        bg_seed_scale (float): Factor on the background score of the seeds.
        init_cfg (dict, optional): Initialisation config (PyTorch default
            init in the authors' code, hence None).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 channels: Sequence[int] = (128, 128, 256, 256),
                 bg_seed_scale: float = 0.3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(channels):
            raise ValueError('in_channels and channels must have the same '
                             f'length, got {in_channels} and {channels}')
        self.side_convs = nn.ModuleList(
            nn.Conv2d(cin, cout, 1, bias=False)
            for cin, cout in zip(in_channels, channels))
        self.bg_seed_scale = bg_seed_scale

    def side_features(self, feats: Sequence[Tensor],
                      size: Tuple[int, int], sparse: bool = False) -> Tensor:
        """Hierarchical features ``Phi``.

        Args:
            feats (Sequence[Tensor]): The backbone's feature maps, map ``i`` of
                shape ``(N, in_channels[i], h_i, w_i)``.
            size (tuple[int, int]): The CAM grid ``(h, w)``.
            sparse (bool): Project and normalise only the pixels the bilinear
                resize reads (a quarter of a stride-4 map resized to stride 16;
                see :func:`resize_pointwise`): the same ``Phi`` to float
                rounding, with less work. Defaults to False.

        Returns:
            Tensor: ``Phi`` of shape ``(N, sum(channels), h, w)``.
        """
        expected = [conv.in_channels for conv in self.side_convs]
        got = [feat.shape[1] for feat in feats]
        if got != expected:
            raise ValueError(f'SFCPrototypeHead has side projections for in_channels={expected}, '
                             f'but the backbone returned feature maps with channels {got}')
        sides = []
        for conv, feat in zip(self.side_convs, feats):
            if sparse:
                sides.append(resize_pointwise(partial(_project, conv), feat.detach(), size))
            else:
                sides.append(F.interpolate(_project(conv, feat.detach()), size=size,
                                           mode='bilinear', align_corners=False))
        return torch.cat(sides, dim=1)

    def forward(self, side_feats: Tensor, cam: Tensor, mask: Tensor) -> Tensor:
        """Prototype CAM from ``Phi`` and the seeds of ``cam``.

        Args:
            side_feats (Tensor): ``Phi`` of shape ``(N, C, h, w)``.
            cam (Tensor): PCM-refined CAM ``M_W`` of shape ``(N, K+1, h, w)``.
            mask (Tensor): Seed mask broadcastable to ``(N, K+1, h, w)``.

        Returns:
            Tensor: ``M_P`` of shape ``(N, K+1, h, w)``.
        """
        seeds = seed_masks(cam, mask, self.bg_seed_scale)
        return prototype_cam(side_feats, masked_prototypes(side_feats, seeds))
