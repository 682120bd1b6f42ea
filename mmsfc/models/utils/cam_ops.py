# Copyright (c) mmsfc contributors. All rights reserved.
"""CAM operations shared by training and inference.

Notation: ``N`` images, ``K`` foreground classes, ``K + 1`` CAM channels
(channel 0 is background, channel ``c + 1`` is foreground class ``c``),
``h × w`` the feature grid (stride 16 for the SFC ResNet-50).
"""
import torch
import torch.nn.functional as F
from torch import Tensor

from mmsfc.postprocess.cam_rule import background_rule, channel_argmax  # noqa: F401  (re-exported)

#: Added to denominators of every max / norm normalisation (docs/method_notes.md §3).
NORM_EPS = 1e-5


def max_normalize(maps: Tensor, eps: float = NORM_EPS) -> Tensor:
    """Divide every channel by its spatial maximum.

    ``A_c = M_c / (max_x M_c(x) + eps)``, taken per image and per channel over
    the whole grid (padding included, docs/method_notes.md §3).

    Args:
        maps (Tensor): Non-negative maps of shape ``(N, C, h, w)``.
        eps (float): Added to the maximum.

    Returns:
        Tensor: Maps of shape ``(N, C, h, w)`` with peaks just below 1.
    """
    return maps / (maps.amax(dim=(2, 3), keepdim=True) + eps)


def normalized_cam_with_background(logit_maps: Tensor) -> Tensor:
    """Classifier CAM of docs/method_notes.md §3: ReLU, per-class max norm, background.

    ``A_c = ReLU(Z_c) / (max ReLU(Z_c) + 1e-5)`` and
    ``A_bg = 1 - max_c A_c`` with the maximum over **all** classes (absent
    ones included, before any label mask).

    Args:
        logit_maps (Tensor): Classifier outputs ``Z`` of shape ``(N, K, h, w)``.

    Returns:
        Tensor: CAM of shape ``(N, K+1, h, w)``, background first.
    """
    cam = max_normalize(F.relu(logit_maps))
    background = 1 - cam.amax(dim=1, keepdim=True)
    return torch.cat([background, cam], dim=1)


def l2_normalize(feats: Tensor, eps: float = NORM_EPS) -> Tensor:
    """Per-pixel L2 normalisation ``F / (||F||_2 + eps)`` over channels.

    Args:
        feats (Tensor): Features of shape ``(N, C, h, w)``.
        eps (float): Added to the norm.

    Returns:
        Tensor: Features of shape ``(N, C, h, w)``.
    """
    return feats / (torch.norm(feats, p=2, dim=1, keepdim=True) + eps)


def seed_masks(cam: Tensor, mask: Tensor, bg_scale: float = 0.3) -> Tensor:
    """One-hot seeds of the prototype branch (docs/method_notes.md §5).

    The background channel of a copy of ``cam`` is multiplied by
    ``bg_scale``, each pixel is assigned to its argmax channel, and the one-hot
    result is multiplied by ``mask`` (the valid/label mask in training, the
    image label at inference). No gradient flows through seeds.

    Args:
        cam (Tensor): PCM-refined CAM ``M_W`` of shape ``(N, K+1, h, w)``.
        mask (Tensor): Broadcastable to ``(N, K+1, h, w)``, e.g. the valid mask
            ``(N, K+1, h, w)`` or the label ``(N, K+1, 1, 1)``.
        bg_scale (float): Factor on the background score before the argmax.

    Returns:
        Tensor: Binary seeds of shape ``(N, K+1, h, w)``.
    """
    with torch.no_grad():
        scores = cam.detach().clone()
        scores[:, 0] *= bg_scale
        winners = channel_argmax(scores, dim=1, keepdim=True)
        # one-hot by a scatter (F.one_hot reads its input's range back on some devices)
        seeds = torch.zeros_like(scores).scatter_(1, winners, 1.0)
        return seeds * mask


def masked_prototypes(feats: Tensor, seeds: Tensor) -> Tensor:
    """Prototypes ``p_k = (1 / hw) * sum_x R_k(x) * Phi(x)`` (paper Eq. 3).

    Computed as one batched matrix product, ``(N, K+1, hw) @ (N, hw, C)``,
    so no ``(N, K+1, C, h, w)`` tensor is ever built. The divisor is the grid
    size, not the seed area, as in the authors' code (only cosines of the
    prototypes are used, so the scale does not matter). An empty seed gives
    a zero prototype.

    Args:
        feats (Tensor): Features ``Phi`` of shape ``(N, C, h, w)``.
        seeds (Tensor): Seeds ``R`` of shape ``(N, K+1, h, w)``.

    Returns:
        Tensor: Prototypes of shape ``(N, K+1, C)``.
    """
    num_pixels = feats.shape[2] * feats.shape[3]
    return torch.bmm(seeds.flatten(2), feats.flatten(2).transpose(1, 2)) / num_pixels


def prototype_cam(feats: Tensor, prototypes: Tensor, eps: float = 1e-8) -> Tensor:
    """``M_P[k](x) = ReLU(cos(p_k, Phi(x)))`` (paper Eq. 4).

    Matches ``torch.cosine_similarity`` (each norm clamped at ``eps``), so a
    zero prototype gives a zero map, never NaN.

    Args:
        feats (Tensor): Features ``Phi`` of shape ``(N, C, h, w)``.
        prototypes (Tensor): Prototypes of shape ``(N, K+1, C)``.
        eps (float): Lower bound of each norm.

    Returns:
        Tensor: Prototype CAM of shape ``(N, K+1, h, w)``.
    """
    unit_feats = feats / feats.norm(dim=1, keepdim=True).clamp_min(eps)
    unit_protos = prototypes / prototypes.norm(dim=2, keepdim=True).clamp_min(eps)
    cosine = torch.bmm(unit_protos, unit_feats.flatten(2))
    return F.relu(cosine).view(feats.shape[0], prototypes.shape[1], *feats.shape[2:])


def label_to_channel_mask(labels: Tensor) -> Tensor:
    """Prepend the always-present background to multi-hot image labels.

    Args:
        labels (Tensor): Multi-hot foreground labels ``y`` of shape ``(N, K)``.

    Returns:
        Tensor: ``[1, y]`` of shape ``(N, K+1)``.
    """
    return torch.cat([labels.new_ones(labels.shape[0], 1), labels], dim=1)
