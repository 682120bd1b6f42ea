# Copyright (c) mmsfc contributors. All rights reserved.
import warnings
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from ..utils.cam_ops import max_normalize


def distribution_coefficients(class_counts: Sequence[float],
                              n_ibr: int = 4,
                              c_ibr: float = 3,
                              n_iter: int = 660,
                              class_names: Optional[Sequence[str]] = None) -> Tensor:
    """Distribution coefficients ``DC`` (paper Eq. 6, as the authors code it).

    With ``n_c`` the number of training images containing class ``c`` and
    ``|C|`` the number of classes (docs/method_notes.md §7):

    - total demand ``D_c = sum_i |n_c - n_i|``;
    - images re-sampled per class by IBR ``N = N_IBR * C_IBR * N_iter / |C|``;
    - ``r_c = D_c / (n_c + N)`` and ``DC_c = r_c / mean_j r_j``, so the mean
      of DC over the classes is 1. (Eq. 6 of the paper normalises by
      ``sum_j D_j`` instead, which makes the terms ~1000 times smaller.)

    Args:
        class_counts (Sequence[float]): ``n_c`` for the ``K`` foreground
            classes, in class-index order.
        n_ibr (int): Images IBR appends to each batch. Defaults to 4.
        c_ibr (float): Classes assumed per re-sampled image. Defaults to 3.
        n_iter (int): Iterations per epoch. Defaults to 660 (VOC train_aug
            with batch 16, as coded by the authors).
        class_names (Sequence[str], optional): Names of the ``K`` classes,
            used in the warning about classes without a training image.

    Returns:
        Tensor: ``DC`` of shape ``(K,)``, float64.
    """
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() == 0:
        raise ValueError(f'class_counts must be a non-empty 1-D sequence, got {class_counts}')
    if (counts < 0).any():
        raise ValueError(f'class_counts must be non-negative, got {class_counts}')
    num_classes = counts.numel()
    resampled = n_ibr * c_ibr * n_iter / num_classes
    if (counts == 0).any():
        empty = torch.nonzero(counts == 0).flatten().tolist()
        if class_names is not None and len(class_names) == num_classes:
            named = ', '.join(repr(class_names[i]) for i in empty)
        else:  # foreground class c is entry c - 1
            named = ', '.join(f'class index {i + 1}' for i in empty)
        warnings.warn(f'{named}: no training image; the distribution coefficient comes only '
                      'from the re-sampled images', stacklevel=2)
        if resampled <= 0:
            raise ValueError('a class with zero images needs n_ibr * c_ibr * n_iter > 0 '
                             'to have a finite distribution coefficient')
    demand = (counts[:, None] - counts[None, :]).abs().sum(dim=1)
    ratio = demand / (counts + resampled)
    if ratio.mean() == 0:
        # Every class has the same count: no class is under-represented.
        return torch.ones_like(ratio)
    return ratio / ratio.mean()


@MODELS.register_module()
class MSDWLoss(nn.Module):
    """Multi-scaled distribution-weighted consistency loss (paper Eq. 5-7).

    Two terms, with the reductions and weights of the authors' code
    (docs/method_notes.md §6):

    - ``L_DW^P = w_P * mean_{n,k,x}( DC_k * |M_W - M_P / (max M_P + 1e-5)| )``
      over all ``K+1`` channels of the full-scale maps (background weight 1).
    - ``L_DW^W = w_W * mean_{n,c,x}( DC_c * |y_c * down(M_W) - y_c * M_W^s| )``
      over the ``K`` foreground channels, where ``down`` is bilinear ×0.5 with
      ``align_corners=True`` and ``M_W^s`` comes from the half-scale image.

    Ablation switches (paper Tables 4 and 5): ``loss_weight_p=0`` or
    ``loss_weight_w=0`` drops a term; ``dc_in_p`` / ``dc_in_w`` turn DC off in a
    term (weight 1 for every class).

    ``DC`` is computed by :func:`distribution_coefficients` from the per-class
    image counts of the training set: pass ``class_counts`` here, or let
    :class:`~mmsfc.engine.hooks.DistributionCoefficientHook` call
    :meth:`set_class_counts` with the training dataset's counts. It is a
    non-persistent buffer: derived from the data, it follows the model's
    device but stays out of checkpoints (the hook recomputes it on resume).

    ``N_IBR`` and ``N_iter`` are properties of the training run, so by
    default (None) the hook fills them in from the training loader: the IBR
    sampler's ``num_resampled`` and the iterations per epoch (see
    :class:`~mmsfc.engine.hooks.DistributionCoefficientHook`). A value given
    here wins (e.g. ``n_iter=660``, the authors' typed value, where the
    derived one is 10582 // 16 = 661); with ``class_counts`` given here both
    must be given.

    Args:
        num_classes (int): Foreground classes ``K``.
        class_counts (Sequence[float], optional): ``n_c`` per foreground class.
        n_ibr (int, optional): ``N_IBR``. Defaults to None (from the sampler).
        c_ibr (float): ``C_IBR``. Defaults to 3.
        n_iter (int, optional): ``N_iter``. Defaults to None (from the
            dataset size and the batch size).
        loss_weight_p (float): ``w_P``. Defaults to 1.6.
        loss_weight_w (float): ``w_W``. Defaults to 0.8.
        dc_in_p (bool): Weight ``L_DW^P`` by DC. Defaults to True.
        dc_in_w (bool): Weight ``L_DW^W`` by DC. Defaults to True.
    """

    def __init__(self,
                 num_classes: int,
                 class_counts: Optional[Sequence[float]] = None,
                 n_ibr: Optional[int] = None,
                 c_ibr: float = 3,
                 n_iter: Optional[int] = None,
                 loss_weight_p: float = 1.6,
                 loss_weight_w: float = 0.8,
                 dc_in_p: bool = True,
                 dc_in_w: bool = True) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.n_ibr = n_ibr
        self.c_ibr = c_ibr
        self.n_iter = n_iter
        self.loss_weight_p = loss_weight_p
        self.loss_weight_w = loss_weight_w
        self.dc_in_p = dc_in_p
        self.dc_in_w = dc_in_w
        self.register_buffer('dc', torch.full((num_classes,), float('nan')), persistent=False)
        # the buffer state last found free of NaN: checking it every step would
        # sync the device every step; this checks once per new value (set by
        # set_class_counts, assigned, copied into or moved)
        self._dc_checked: Optional[tuple] = None
        if class_counts is not None:
            self.set_class_counts(class_counts)

    @property
    def needs_dc(self) -> bool:
        """Whether an enabled term is weighted by DC."""
        return ((self.dc_in_p and self.loss_weight_p > 0)
                or (self.dc_in_w and self.loss_weight_w > 0))

    def set_class_counts(self, class_counts: Sequence[float],
                         class_names: Optional[Sequence[str]] = None) -> None:
        """Compute and store ``DC`` from per-class training image counts.

        ``class_names`` (the ``K`` foreground names) only name classes in warnings.
        """
        if len(class_counts) != self.num_classes:
            raise ValueError(f'expected {self.num_classes} class counts, '
                             f'got {len(class_counts)}: {list(class_counts)}')
        if self.n_ibr is None or self.n_iter is None:
            raise ValueError('MSDWLoss needs n_ibr and n_iter for the distribution '
                             'coefficients: DistributionCoefficientHook derives them from the '
                             'training loader; give both when passing class_counts directly')
        dc = distribution_coefficients(class_counts, self.n_ibr, self.c_ibr, self.n_iter,
                                       class_names)
        self.dc.copy_(dc.to(self.dc))

    def _class_weights(self, use_dc: bool) -> Tensor:
        if not use_dc:
            return torch.ones_like(self.dc)
        key = (id(self.dc), self.dc.data_ptr(), self.dc._version, self.dc.device)
        if key != self._dc_checked:
            if torch.isnan(self.dc).any():
                raise RuntimeError(
                    'MSDWLoss has no distribution coefficients: pass class_counts, '
                    "or add dict(type='DistributionCoefficientHook') to custom_hooks "
                    'so they are computed from the training dataset')
            self._dc_checked = key
        return self.dc

    def forward(self, cam_w: Tensor, cam_p: Optional[Tensor], cam_w_half: Tensor,
                labels: Tensor) -> Dict[str, Tensor]:
        """Compute the enabled terms.

        Args:
            cam_w (Tensor): Full-scale ``M_W`` of shape ``(N, K+1, h, w)``.
            cam_p (Tensor, optional): Full-scale ``M_P`` of shape
                ``(N, K+1, h, w)``, not yet max-normalised. Only needed when
                ``loss_weight_p > 0``.
            cam_w_half (Tensor): Half-scale ``M_W^s`` of shape
                ``(N, K+1, h', w')`` with ``h' = floor(h / 2)``.
            labels (Tensor): Multi-hot labels of shape ``(N, K)``.

        Returns:
            dict[str, Tensor]: ``loss_dw_p`` and/or ``loss_dw_w``.
        """
        losses = {}
        if self.loss_weight_p > 0:
            weights = torch.cat([self.dc.new_ones(1), self._class_weights(self.dc_in_p)])
            diff = (cam_w - max_normalize(cam_p)).abs() * weights.view(1, -1, 1, 1)
            losses['loss_dw_p'] = self.loss_weight_p * diff.mean()
        if self.loss_weight_w > 0:
            weights = self._class_weights(self.dc_in_w).view(1, -1, 1, 1)
            label_mask = labels[:, :, None, None]
            down = F.interpolate(cam_w, scale_factor=0.5, mode='bilinear', align_corners=True)
            diff = (down[:, 1:] * label_mask - cam_w_half[:, 1:] * label_mask).abs()
            losses['loss_dw_w'] = self.loss_weight_w * (diff * weights).mean()
        return losses
