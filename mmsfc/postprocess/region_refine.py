# Copyright (c) mmsfc contributors. All rights reserved.
"""Snap a pseudo label to class-agnostic regions (SAM masks, superpixels, ...).

The merge rule of "Segment Anything Model (SAM) Enhanced Pseudo Labels for
Weakly Supervised Semantic Segmentation" (Chen et al., arXiv 2305.05803),
with its two thresholds as parameters. Plain numpy, nothing from the rest of
mmsfc.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

#: Label of uncertain pixels in the pseudo labels (as :data:`mmsfc.postprocess.UNCERTAIN`).
_UNCERTAIN = 255


@dataclass(frozen=True)
class RegionRule:
    """Parameters of :func:`refine_with_regions` (defaults: the published rule).

    Attributes:
        majority (float): A region goes to class ``c`` when more than this
            share of its pixels has label ``c`` (``|R ∩ P_c| > majority·|R|``).
        coverage (float): ... or when it holds at least this share of the
            pixels of ``c`` (``|R ∩ P_c| >= coverage·|P_c|``); a value above 1
            disables the clause.
        keep_uncertain (bool): Uncertain (255) pixels that no claimed region
            covers stay 255; False sets them to background, as the published
            code does (it never writes 255).
    """
    majority: float = 0.5
    coverage: float = 0.85
    keep_uncertain: bool = True

    def __post_init__(self):
        if not 0 <= self.majority < 1:
            raise ValueError(f'RegionRule.majority must be in [0, 1), got {self.majority}')
        if not self.coverage > 0:
            raise ValueError(f'RegionRule.coverage must be > 0, got {self.coverage}')


def _check_region_map(region_map: np.ndarray, shape) -> None:
    if not np.issubdtype(region_map.dtype, np.integer):
        raise ValueError(f'a region map must hold integers, got {region_map.dtype}')
    if region_map.shape != tuple(shape):
        raise ValueError(f'region map of shape {region_map.shape} for labels of shape '
                         f'{tuple(shape)}')
    if region_map.size and region_map.min() < 0:
        raise ValueError('a region map holds 0 (no region) and positive region ids; '
                         f'got {region_map.min()}')


def as_region_stack(regions: Union[np.ndarray, Sequence[np.ndarray]], shape) -> np.ndarray:
    """Regions as a boolean stack ``(N, H, W)`` (one mask per region, overlaps allowed).

    Args:
        regions: An integer region map ``(H, W)`` (0: no region, ``1..N``:
            region ids, gaps allowed), or a stack / list of ``N`` masks
            ``(H, W)`` (nonzero: inside).
        shape (tuple): ``(H, W)`` the regions must have.

    Returns:
        np.ndarray: bool ``(N, H, W)``, empty regions dropped.
    """
    shape = tuple(shape)
    if isinstance(regions, np.ndarray) and regions.ndim == 2:
        _check_region_map(regions, shape)
        ids = np.unique(regions)
        ids = ids[ids > 0]
        return regions[None] == ids[:, None, None]
    masks = [np.asarray(m) for m in regions]
    if not masks:
        return np.zeros((0, *shape), bool)
    for i, mask in enumerate(masks):
        if mask.shape != shape:
            raise ValueError(f'region {i} has shape {mask.shape}, the labels {shape}')
    stack = np.stack(masks).astype(bool)
    return stack[stack.reshape(len(stack), -1).any(axis=1)]


def refine_with_regions(labels: np.ndarray, regions: Union[np.ndarray, Sequence[np.ndarray]],
                        rule: Optional[RegionRule] = None) -> np.ndarray:
    """Snap a pseudo label to class-agnostic regions.

    Let ``P_c`` be the pixels labelled ``c`` in ``labels``. The classes
    present (``1..254``; 0 background and 255 uncertain are no classes) are
    processed in **ascending order**. For class ``c``, every region ``R`` not
    yet claimed by an earlier class is claimed by ``c`` when

    1. more than ``rule.majority`` of ``R`` lies in ``c``:
       ``|R ∩ P_c| > majority · |R|`` (published: one half), or
    2. ``R`` holds at least ``rule.coverage`` of ``c``:
       ``|R ∩ P_c| >= coverage · |P_c|`` (published: 0.85).

    Each region is claimed at most once (by the first class in that order).
    The pixels of ``c``'s claimed regions get ``c`` (also background and
    uncertain pixels: regions grow objects to their edges), and so do the
    pixels of ``P_c`` that none of the regions still unclaimed when ``c``'s
    turn came covers (class pixels no region speaks for keep their label).
    Pixels of ``P_c`` in a free region that ``c`` did not claim lose ``c``;
    pixels of ``P_c`` in a region an earlier class claimed keep ``c``: a
    later class overwrites an earlier one where both write. Everything else
    is background (0), except uncertain pixels (255), which stay 255 with
    ``rule.keep_uncertain``. The sizes ``|R|`` count all of a region's
    pixels, uncertain ones included, so uncertain pixels vote against every
    class.

    Args:
        labels (np.ndarray): uint8 labels ``(H, W)``: 0 background, ``1..K``
            classes, 255 uncertain.
        regions (np.ndarray | Sequence[np.ndarray]): An integer region map
            ``(H, W)`` (0: no region, ``1..N``: region ids) or ``N`` binary
            masks ``(N, H, W)`` (overlaps allowed; a list of ``(H, W)`` masks
            also works).
        rule (RegionRule, optional): The thresholds and the handling of
            255; None for the published rule (``RegionRule()``).

    Returns:
        np.ndarray: uint8 labels ``(H, W)``, same convention.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f'labels must be (H, W), got shape {labels.shape}')
    rule = rule or RegionRule()
    if isinstance(regions, np.ndarray) and regions.ndim == 2:
        return _refine_with_map(labels, regions, rule)
    stack = as_region_stack(regions, labels.shape)
    flat = stack.reshape(len(stack), labels.size)
    flat_labels = labels.reshape(-1)
    sizes = flat.sum(axis=1)
    out = _start(flat_labels, rule)
    free = np.ones(len(stack), bool)
    for c in _classes(flat_labels):
        in_c = flat_labels == c
        claimed = free & _claims(flat[:, in_c].sum(axis=1), sizes, in_c.sum(), rule)
        covered_by_free = flat[free].any(axis=0)
        out[flat[claimed].any(axis=0) | (in_c & ~covered_by_free)] = c
        free &= ~claimed
    return out.reshape(labels.shape)


def _start(flat_labels: np.ndarray, rule: RegionRule) -> np.ndarray:
    """The output before any class: background, and 255 where kept."""
    out = np.zeros(flat_labels.shape, np.uint8)
    if rule.keep_uncertain:
        out[flat_labels == _UNCERTAIN] = _UNCERTAIN
    return out


def _classes(flat_labels: np.ndarray):
    """The classes present, ascending (0 and 255 are none)."""
    return [int(c) for c in np.unique(flat_labels) if c not in (0, _UNCERTAIN)]


def _claims(overlap: np.ndarray, sizes: np.ndarray, class_size: int,
            rule: RegionRule) -> np.ndarray:
    """Which regions satisfy clause 1 or 2 for a class (before the "used once" rule)."""
    return (overlap > rule.majority * sizes) | (overlap >= rule.coverage * class_size)


def _refine_with_map(labels: np.ndarray, region_map: np.ndarray, rule: RegionRule) -> np.ndarray:
    """:func:`refine_with_regions` for a region map: one region per pixel, by counting."""
    _check_region_map(region_map, labels.shape)
    ids, flat_regions = np.unique(region_map.reshape(-1), return_inverse=True)
    # region index r of each pixel, or -1 where no region covers it
    offset = 1 if ids.size and ids[0] == 0 else 0
    flat_regions = flat_regions.reshape(-1) - offset
    num_regions = len(ids) - offset
    covered = flat_regions >= 0
    flat_labels = labels.reshape(-1)
    sizes = np.bincount(flat_regions[covered], minlength=num_regions)
    out = _start(flat_labels, rule)
    owner = np.zeros(num_regions, np.int64)  # 0: free, else the claiming class
    for c in _classes(flat_labels):
        in_c = flat_labels == c
        overlap = np.bincount(flat_regions[in_c & covered], minlength=num_regions)
        claimed = (owner == 0) & _claims(overlap, sizes, in_c.sum(), rule)
        was_free = np.concatenate([owner == 0, [False]])  # index -1: no region
        region_claimed = np.concatenate([claimed, [False]])
        out[region_claimed[flat_regions] | (in_c & ~was_free[flat_regions])] = c
        owner[claimed] = c
    return out.reshape(labels.shape)
