# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from mmsfc.postprocess.path_index import get_path_index
from mmsfc.postprocess.random_walk import affinity_labels, edge_to_affinity


@MODELS.register_module()
class IRNAffinityDisplacementLoss(nn.Module):
    """The affinity and displacement losses of IRN (``train_irn.py``).

    Pairs within ``radius`` on the stride-4 grid (path indices cached per
    grid size) are labelled from the label map: background-positive,
    foreground-positive (same label) and negative (different labels); pairs
    touching ``ignore_index`` do not count. With ``a`` the affinity (one
    minus the largest boundary probability on the pair's path):

    - ``pos = mean_bg(-log(a)) / 2 + mean_fg(-log(a)) / 2``,
      ``neg = mean_neg(-log(1 - a))`` (eps 1e-5 inside the logs);
    - ``disp_fg = sum_fg |D(src) - D(dst) - (dy, dx)| / (2 n_fg)``,
      ``disp_bg = sum_bg |D(src) - D(dst)| / (2 n_bg)``;
    - ``loss_aff = (pos + neg) / 2``, ``loss_disp = (disp_fg + disp_bg) / 2``.

    Without a displacement field (``displacement=None``, an IRN without its
    displacement branch) only the affinity terms are returned.

    Means are over the whole batch (eps 1e-5 in the denominators), as the
    authors compute them. The authors compute the pair labels in the data
    loader; here they come from the packed label map on the device (the same
    values, without shipping three ``(D, S)`` masks per image).

    Args:
        radius (int): Relation radius on the grid (10).
        ignore_index (int): Unknown label (255).
        loss_weight (float): Factor on both losses.
    """

    def __init__(self, radius: int = 10, ignore_index: int = 255,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.radius = radius
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self, edge_logits: Tensor, displacement: Optional[Tensor],
                label: Tensor) -> Dict[str, Tensor]:
        """Losses of a batch.

        Args:
            edge_logits (Tensor): Boundary logits ``(N, 1, h, w)``.
            displacement (Tensor, optional): Displacement field
                ``(N, 2, h, w)``; None for the affinity loss alone.
            label (Tensor): Labels ``(N, h, w)`` on the same grid.

        Returns:
            dict[str, Tensor]: ``loss_aff`` and ``loss_disp``, plus the five
            terms (``aff_bg_pos``, ``aff_fg_pos``, ``aff_neg``, ``disp_fg``,
            ``disp_bg``) for the log; the ``disp`` entries only with a
            displacement field.
        """
        height, width = edge_logits.shape[-2:]
        if label.shape[-2:] != (height, width) or (
                displacement is not None and displacement.shape[-2:] != (height, width)):
            shape = None if displacement is None else tuple(displacement.shape)
            raise ValueError(f'label {tuple(label.shape)}, edges {tuple(edge_logits.shape)} and '
                             f'displacements {shape} must share one grid')
        index = get_path_index(self.radius, height, width)
        bg_pos, fg_pos, neg = affinity_labels(label, index, self.ignore_index)
        aff = edge_to_affinity(torch.sigmoid(edge_logits), index)
        eps = 1e-5
        pos_loss = -torch.log(aff + eps)
        neg_loss = -torch.log(1 + eps - aff)
        bg_pos_loss = (bg_pos * pos_loss).sum() / (bg_pos.sum() + eps)
        fg_pos_loss = (fg_pos * pos_loss).sum() / (fg_pos.sum() + eps)
        neg_aff_loss = (neg * neg_loss).sum() / (neg.sum() + eps)
        w = self.loss_weight
        losses = dict(
            loss_aff=w * ((bg_pos_loss / 2 + fg_pos_loss / 2) + neg_aff_loss) / 2,
            aff_bg_pos=bg_pos_loss.detach(), aff_fg_pos=fg_pos_loss.detach(),
            aff_neg=neg_aff_loss.detach())
        if displacement is None:
            return losses

        flat = displacement.flatten(2)
        src = flat[:, :, torch.from_numpy(index.src.copy()).to(flat.device)]
        dst = flat[:, :, torch.from_numpy(index.dst.copy()).to(flat.device)]
        pair = src.unsqueeze(2) - dst  # (N, 2, D, S)
        target = torch.from_numpy(index.destinations.T.copy()).to(pair)[None, :, :, None]
        disp_fg = ((pair - target).abs() * fg_pos.unsqueeze(1)).sum() / (2 * fg_pos.sum() + eps)
        disp_bg = (pair.abs() * bg_pos.unsqueeze(1)).sum() / (2 * bg_pos.sum() + eps)

        losses.update(loss_disp=w * (disp_fg + disp_bg) / 2, disp_fg=disp_fg.detach(),
                      disp_bg=disp_bg.detach())
        return losses
