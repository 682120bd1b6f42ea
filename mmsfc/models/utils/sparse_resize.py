# Copyright (c) mmsfc contributors. All rights reserved.
"""A per-pixel map followed by a bilinear downsampling, computed where it is read.

``F.interpolate(x, size, mode='bilinear', align_corners=False)`` reads, for
each output row ``y``, the two input rows ``i0(y)`` and ``i1(y)`` around the
source coordinate ``s(y) = (in / out) * (y + 0.5) - 0.5`` (clamped at 0), and
likewise for columns. Downsampling by more than 2 reads only some rows and
columns: by 4 (a stride-4 map resized to the stride-16 grid), two rows in
every four and two columns in every four, a quarter of the pixels. A per-pixel
map ``f`` (a 1×1 convolution, a norm over channels) commutes with picking
pixels, so ``resize(f(x)) = resize'(f(x[rows, cols]))``, with ``resize'`` the
same interpolation with its taps renumbered: ``f`` runs on the pixels that
are read and no others.
"""
from functools import lru_cache
from typing import Callable, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def bilinear_taps(in_size: int, out_size: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Source taps of a 1-D bilinear resize with ``align_corners=False``.

    As PyTorch computes them (float32 arithmetic): ``s = max(scale * (y +
    0.5) - 0.5, 0)`` with ``scale = in / out``, ``i0 = min(floor(s), in - 1)``,
    ``i1 = i0 + 1`` (``i0`` at the last pixel) and the weight of ``i1``
    ``w1 = clamp(s - i0, 0, 1)``; output ``y`` is ``(1 - w1) x[i0] + w1 x[i1]``.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``i0`` and ``i1`` (int64) and ``w1``
        (float32), each of shape ``(out_size,)``, on the CPU.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    source = (torch.arange(out_size, dtype=torch.float32) + 0.5) * float(scale)
    source = (source - 0.5).clamp_min_(0)
    index0 = source.floor().long().clamp_max_(in_size - 1)
    weight1 = (source - index0).clamp_(0, 1)
    index1 = index0 + (index0 < in_size - 1).long()
    return index0, index1, weight1


@lru_cache(maxsize=64)
def _read_plan(height: int, width: int, size: Tuple[int, int], max_read: float,
               device: torch.device) -> Optional[Tuple[Tensor, ...]]:
    """Rows and columns read, renumbered taps and weights; None if too many are read.

    Depends on the sizes only: computed once on the CPU and kept on ``device``,
    so a training step at a fixed crop never waits for the device.
    """
    rows0, rows1, row_w = bilinear_taps(height, size[0])
    cols0, cols1, col_w = bilinear_taps(width, size[1])
    rows = torch.unique(torch.cat([rows0, rows1]))
    cols = torch.unique(torch.cat([cols0, cols1]))
    if rows.numel() * cols.numel() > max_read * height * width:
        return None
    row_pos = torch.searchsorted(rows, torch.stack([rows0, rows1]))
    col_pos = torch.searchsorted(cols, torch.stack([cols0, cols1]))
    return tuple(t.to(device) for t in (rows, cols, row_pos, col_pos, row_w, col_w))


def resize_pointwise(fn: Callable[[Tensor], Tensor], inputs: Tensor,
                     size: Tuple[int, int], max_read: float = 0.5) -> Tensor:
    """``F.interpolate(fn(inputs), size, mode='bilinear', align_corners=False)``.

    ``fn`` must act on each pixel alone (e.g. a 1×1 convolution followed by a
    per-pixel norm). When the resize reads at most ``max_read`` of the input
    pixels, ``fn`` runs only on those (the rows and columns that are read) and
    the interpolation uses the same taps and weights; otherwise, and when
    ``size`` is the input size (the resize is the identity), this is the plain
    computation. Equal to it up to float rounding, in values and gradients.

    Args:
        fn (Callable): Per-pixel map ``(N, C, h, w) -> (N, C', h, w)``.
        inputs (Tensor): Input of shape ``(N, C, H, W)``.
        size (tuple[int, int]): Output size ``(h_out, w_out)``.
        max_read (float): Largest share of read pixels at which ``fn`` runs
            on the read pixels only.

    Returns:
        Tensor: ``(N, C', h_out, w_out)``.
    """
    height, width = inputs.shape[2:]
    size = tuple(int(side) for side in size)
    if size == (height, width):
        return fn(inputs)  # the resize would copy every pixel unchanged
    plan = _read_plan(height, width, size, max_read, inputs.device)
    if plan is None:
        return F.interpolate(fn(inputs), size=size, mode='bilinear', align_corners=False)
    rows, cols, row_pos, col_pos, row_w, col_w = plan
    # Gathers by indexing, not index_select: the same values and gradients (bit for
    # bit on CPUs), but torch's CPU index_select along the last dim is several times
    # slower. contiguous(): a channels_last input would give an (N, H, C, W) layout.
    read = fn(inputs[:, :, rows][:, :, :, cols].contiguous())
    col_w = col_w.to(read.dtype)
    row_w = row_w.to(read.dtype)[:, None]
    # width first, then height: the order of PyTorch's CPU kernel
    across = read[:, :, :, col_pos[0]] * (1 - col_w) + read[:, :, :, col_pos[1]] * col_w
    return across[:, :, row_pos[0]] * (1 - row_w) + across[:, :, row_pos[1]] * row_w
