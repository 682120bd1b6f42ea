# Copyright (c) mmsfc contributors. All rights reserved.
"""Inter-pixel affinities and the random walk of IRN, and SFC's two-walk mask rule.

Plain torch / numpy functions (no registry, nothing from the models).

**Memory-bounded walk.** IRN builds the dense ``(hw)^2`` transition matrix of
the stride-4 grid and squares it ``exp_times`` times (2^8 = 256 steps); for a
500x375 image that is a 11,750^2 float matrix (0.55 GB, 1.3e13 flops for the
squarings), for 640x640 25,600^2 (2.6 GB). Squaring a sparse matrix fills it
in, so instead :func:`propagate` keeps the transition sparse (each cell
relates to the ~69 cells within radius 5, itself included) and applies it
256 times as a sparse x dense product: the same ``x T^256`` in exact
arithmetic, with memory linear in the grid size (tens of MB) and
``256 * nnz * C`` multiply-adds. :func:`dense_propagate` restates the dense
computation for small grids (tests).
"""
import warnings
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .cam_rule import channel_argmax
from .path_index import PathIndex, search_paths


# ------------------------------------------------------------------ training
def edge_to_affinity(edge: Tensor, path_index: PathIndex) -> Tensor:
    """Affinity of every pair: one minus the largest edge score on its path.

    Args:
        edge (Tensor): Edge probabilities ``(N, H, W)`` (or ``(N, 1, H, W)``)
            on the grid of ``path_index``.
        path_index (PathIndex): Pairs of that grid.

    Returns:
        Tensor: Affinities ``(N, D, S)``.
    """
    flat = edge.reshape(edge.shape[0], -1)
    affinities = []
    for paths in path_index.paths:
        index = torch.from_numpy(paths.copy()).to(edge.device)
        values = flat[:, index.reshape(-1)].reshape(flat.shape[0], *index.shape)
        affinities.append(1 - values.max(dim=2).values)
    return torch.cat(affinities, dim=1)


def affinity_labels(label: Tensor, path_index: PathIndex,
                    ignore_index: int = 255) -> Tuple[Tensor, Tensor, Tensor]:
    """Pair labels of IRN from a label map.

    A pair counts when neither end is ``ignore_index``. It is positive when
    both ends share a label (background-positive for label 0, foreground-
    positive otherwise) and negative when the labels differ.

    Args:
        label (Tensor): Labels ``(N, H, W)`` (0 background, 1..K,
            ``ignore_index`` unknown) on the grid of ``path_index``.
        path_index (PathIndex): Pairs of that grid.
        ignore_index (int): Label of unknown cells.

    Returns:
        tuple[Tensor]: Float masks ``(N, D, S)``: background-positive,
        foreground-positive and negative pairs.
    """
    flat = label.reshape(label.shape[0], -1)
    src = flat[:, torch.from_numpy(path_index.src.copy()).to(label.device)].unsqueeze(1)
    dst = flat[:, torch.from_numpy(path_index.dst.copy()).to(label.device)]
    valid = (src != ignore_index) & (dst != ignore_index)
    same = src == dst
    positive = same & valid
    return ((positive & (src == 0)).float(), (positive & (src != 0)).float(),
            (~same & valid).float())


# -------------------------------------------------------------- random walk
def pair_affinities(edge: Tensor, radius: int) -> Tuple[Tensor, Tensor, Tensor]:
    """All pairs closer than ``radius`` on a grid, each once, with their affinity.

    Unlike :class:`PathIndex` (training), every cell is a source; pairs whose
    destination leaves the grid are dropped (IRN pads the edge map and crops
    the dense matrix, which keeps the same pairs: a path stays inside the
    bounding box of its ends).

    Args:
        edge (Tensor): Edge probabilities ``(h, w)``.
        radius (int): Relation radius.

    Returns:
        tuple[Tensor]: ``src`` and ``dst`` flat indices ``(P,)`` (int64) and
        the affinities ``(P,)``.
    """
    height, width = edge.shape
    flat = torch.arange(height * width, device=edge.device).reshape(height, width)
    srcs, dsts, affs = [], [], []
    for group in search_paths(radius):
        for cells in group:
            dy, dx = (int(v) for v in cells[0])
            rows = slice(0, height - dy)
            col0, col1 = max(0, -dx), min(width, width - dx)
            if rows.stop <= 0 or col1 <= col0:
                continue
            path_max = torch.stack([
                edge[py:py + rows.stop, col0 + px:col1 + px] for py, px in cells.tolist()
            ]).amax(dim=0)
            srcs.append(flat[rows, col0:col1].reshape(-1))
            dsts.append(flat[dy:dy + rows.stop, col0 + dx:col1 + dx].reshape(-1))
            affs.append((1 - path_max).reshape(-1))
    if not srcs:
        empty = flat.new_zeros(0)
        return empty, empty, edge.new_zeros(0)
    return torch.cat(srcs), torch.cat(dsts), torch.cat(affs)


def sparse_transition(edge: Tensor, radius: int = 5, beta: float = 10) -> Tensor:
    """The transposed transition matrix of the walk, sparse (CSR).

    IRN's transition ``T = A^beta / colsum(A^beta)`` with ``A`` the symmetric
    affinity (1 on the diagonal). A walk step of row vectors ``x <- x T`` is
    ``x^T <- T^T x^T``; this returns ``T^T`` (row ``j`` = column ``j`` of T).

    Args:
        edge (Tensor): Edge probabilities ``(h, w)``.
        radius (int): Relation radius. beta (float): Affinity exponent.

    Returns:
        Tensor: Sparse CSR ``(hw, hw)``.
    """
    num = edge.numel()
    src, dst, aff = pair_affinities(edge, radius)
    weight = aff.pow(beta)
    diag = torch.arange(num, device=edge.device)
    rows = torch.cat([src, dst, diag])
    cols = torch.cat([dst, src, diag])
    values = torch.cat([weight, weight, weight.new_ones(num)])
    colsum = torch.zeros(num, dtype=values.dtype, device=edge.device).index_add_(0, cols, values)
    # T[i, j] = W[i, j] / colsum[j]; T^T[j, i] = the same value.
    transposed = torch.sparse_coo_tensor(torch.stack([cols, rows]), values / colsum[cols],
                                         (num, num))
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter('ignore', UserWarning)
        return transposed.coalesce().to_sparse_csr()


def propagate(x: Tensor, edge: Tensor, radius: int = 5, beta: float = 10,
              exp_times: int = 8) -> Tensor:
    """IRN's random walk (``propagate_to_edge``), memory-bounded.

    ``x * (1 - edge)`` is multiplied by ``T^(2^exp_times)``; the sparse
    transition is applied ``2^exp_times`` times instead of squaring a dense
    matrix (see the module docstring).

    Args:
        x (Tensor): Scores ``(C, h, w)``.
        edge (Tensor): Edge probabilities ``(h, w)``.
        radius (int): Relation radius (5). beta (float): Affinity exponent (10).
        exp_times (int): The walk takes ``2**exp_times`` steps (8).

    Returns:
        Tensor: Propagated scores ``(C, h, w)``.
    """
    channels, height, width = x.shape
    if edge.shape != (height, width):
        raise ValueError(f'edge map {tuple(edge.shape)} and scores {tuple(x.shape)} differ in size')
    return walk(sparse_transition(edge.float(), radius, beta), x, edge, exp_times)


def walk(transition: Tensor, x: Tensor, edge: Tensor, exp_times: int = 8) -> Tensor:
    """``2**exp_times`` steps of ``x * (1 - edge)`` with a :func:`sparse_transition`.

    Args:
        transition (Tensor): Sparse ``(hw, hw)`` from :func:`sparse_transition`.
        x (Tensor): Scores ``(C, h, w)``. edge (Tensor): ``(h, w)``.
        exp_times (int): Number of squarings the steps stand for.

    Returns:
        Tensor: Propagated scores ``(C, h, w)``.
    """
    channels, height, width = x.shape
    if channels == 0:
        return x.clone()
    state = (x.float() * (1 - edge.float())).reshape(channels, -1).t().contiguous()
    for _ in range(2 ** exp_times):
        state = torch.sparse.mm(transition, state)
    return state.t().reshape(channels, height, width)


# --------------------------------------------------------- SFC's mask rule
@dataclass(frozen=True)
class RandomWalkParams:
    """Settings of :func:`sfc_masks` (defaults: SFC's ``make_seg_labels.py``).

    Attributes:
        alpha (float): Weight of ``M_P'`` in ``M_W' + alpha * M_P'`` (0.3).
        bg_offset (float): Background offset of the background rule (0.4).
        fg_scale (float): Foreground factor of the background rule (2).
        fg_power (float): Exponent of the foreground-only walk's input (1.3).
        all_power (float): Exponent of the all-channel walk's input: 1.69, as
            the authors raise the already-raised map to 1.3 again.
        fg_bg_score (float): Constant background of the foreground walk (0.25).
        radius (int): Relation radius of the walk (5).
        beta (float): Affinity exponent (10).
        exp_times (int): The walk takes ``2**exp_times`` steps (8).
        stride (int): Stride of the edge grid (4).
    """
    alpha: float = 0.3
    bg_offset: float = 0.4
    fg_scale: float = 2.0
    fg_power: float = 1.3
    all_power: float = 1.69
    fg_bg_score: float = 0.25
    radius: int = 5
    beta: float = 10
    exp_times: int = 8
    stride: int = 4


def _upsample_normalise(walked: Tensor, stride: int, size: Tuple[int, int]) -> Tensor:
    """Bilinear x stride, crop to ``size``, divide by the global max."""
    if walked.shape[0] == 0:
        return walked.new_zeros((0, *size))
    up = F.interpolate(walked[None], scale_factor=stride, mode='bilinear',
                       align_corners=False)[0, :, :size[0], :size[1]]
    peak = up.max()
    # The authors divide unconditionally; an all-zero map stays zero here (no NaN).
    return up / peak if peak > 0 else up


def sfc_masks(keys: Sequence[int], cam_w: np.ndarray, cam_p: np.ndarray, edge: Tensor,
              params: RandomWalkParams = RandomWalkParams()) -> np.ndarray:
    """SFC's pseudo label from the stored CAMs and an IRN edge map (two walks).

    ``M = M_W' + alpha * M_P'`` (background rule applied, present channels),
    resized to the edge grid (bilinear). Walk 1 propagates the foreground
    channels of ``M^fg_power`` and prepends the constant ``fg_bg_score``
    background; walk 2 propagates all channels of ``M^all_power``. Each walk
    is upsampled by ``stride``, cropped to the image and divided by its
    maximum; the label is ``keys[argmax(walk1 + walk2)]``. The walks share
    the transition and run as one walk of the stacked inputs (per channel the
    same products; the sparse kernel's rounding may differ, ~1e-4 relative
    after 256 steps, as between thread counts).

    Args:
        keys (Sequence[int]): Class index of each channel ``(C,)``, 0 first.
        cam_w (np.ndarray): Max-normalised ``M_W`` ``(C, H, W)``.
        cam_p (np.ndarray): Max-normalised ``M_P`` ``(C, H, W)``.
        edge (Tensor): Edge probabilities ``(h, w)`` with
            ``h = ceil(H / stride)``, ``w = ceil(W / stride)``; its device is used.
        params (RandomWalkParams): Settings.

    Returns:
        np.ndarray: uint8 labels ``(H, W)``.
    """
    keys = np.asarray(keys, np.int64)
    height, width = cam_w.shape[1:]
    grid = (-(-height // params.stride), -(-width // params.stride))
    if tuple(edge.shape) != grid:
        raise ValueError(f'edge map {tuple(edge.shape)} does not match CAMs {cam_w.shape} '
                         f'at stride {params.stride} (expected {grid})')
    device = edge.device
    w = torch.as_tensor(cam_w, dtype=torch.float32, device=device)
    p = torch.as_tensor(cam_p, dtype=torch.float32, device=device)
    cams = w * params.fg_scale + params.alpha * p * params.fg_scale
    cams[0] = w[0] + params.bg_offset + params.alpha * (p[0] + params.bg_offset)
    cams = F.interpolate(cams[:, None], grid, mode='bilinear', align_corners=False)[:, 0]
    transition = sparse_transition(edge.float(), params.radius, params.beta)
    # Both walks share the transition: one walk of the stacked inputs.
    num_fg = cams.shape[0] - 1
    walked = walk(transition, torch.cat([cams[1:].pow(params.fg_power),
                                         cams.pow(params.all_power)]), edge, params.exp_times)
    fg = _upsample_normalise(walked[:num_fg], params.stride, (height, width))
    first = torch.cat([fg.new_full((1, height, width), params.fg_bg_score), fg])
    second = _upsample_normalise(walked[num_fg:], params.stride, (height, width))
    return keys[channel_argmax(first + second).cpu().numpy()].astype(np.uint8)
