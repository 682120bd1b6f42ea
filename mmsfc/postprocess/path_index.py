# Copyright (c) mmsfc contributors. All rights reserved.
"""Pixel pairs within a radius on a grid, and the path between them (IRN).

Inter-pixel relations (Ahn et al., CVPR 2019) are defined between a pixel and
every pixel closer than ``radius``; the affinity of a pair is one minus the
largest edge score on the straight path joining them. Each unordered pair is
visited once: destinations lie in the lower half plane (``dy > 0``, or
``dy == 0`` and ``dx > 0``).

Plain numpy (no registry, no model), shared by the IRN loss and the random
walk. Everything is computed once and cached per radius and grid size.
"""
from dataclasses import dataclass
from functools import lru_cache
from typing import Tuple

import numpy as np


@lru_cache(maxsize=None)
def search_paths(radius: int) -> Tuple[np.ndarray, ...]:
    """The paths from the origin to each destination closer than ``radius``.

    A path holds the cells of the bounding box of origin and destination
    whose centre lies closer than one cell to the segment joining them, the
    destination first. Paths are grouped by their length (number of cells),
    shortest first; within a group destinations come row by row.

    Args:
        radius (int): Pairs with ``dy**2 + dx**2 < radius**2`` are related.

    Returns:
        tuple[np.ndarray]: One int64 array per path length ``L``, of shape
        ``(D_L, L, 2)`` holding ``(dy, dx)`` cells; ``[:, 0]`` are the
        destinations.
    """
    if radius < 2:
        raise ValueError(f'radius must be at least 2, got {radius}')
    reach = radius - 1
    directions = [(0, dx) for dx in range(1, radius)]
    directions += [(dy, dx) for dy in range(1, radius) for dx in range(-reach, radius)
                   if dy * dy + dx * dx < radius * radius]
    by_length = {}
    for dy, dx in directions:
        squared_length = dy * dy + dx * dx
        cells = [(y, x)
                 for y in range(min(0, dy), max(0, dy) + 1)
                 for x in range(min(0, dx), max(0, dx) + 1)
                 if (dy * x - dx * y) ** 2 < squared_length]
        cells.sort(key=lambda c: -(abs(c[0]) + abs(c[1])))  # stable: destination first
        by_length.setdefault(len(cells), []).append(cells)
    return tuple(np.asarray(by_length[n], np.int64) for n in sorted(by_length))


def search_destinations(radius: int) -> np.ndarray:
    """``(D, 2)`` int64 ``(dy, dx)`` of every destination, in path order."""
    return np.concatenate([paths[:, 0] for paths in search_paths(radius)])


@dataclass(frozen=True)
class PathIndex:
    """Flat indices of the pairs (and their paths) of one grid size.

    Sources are the cells that have all their destinations inside the grid:
    rows ``[0, height - radius + 1)`` and columns
    ``[radius - 1, width - radius + 1)``, ``S`` cells in row-major order.

    Attributes:
        radius (int): The relation radius.
        size (tuple[int, int]): Grid ``(height, width)``.
        paths (tuple[np.ndarray]): Per path length ``L``, int64 ``(D_L, L, S)``
            flat indices of the path cells of every pair.
        src (np.ndarray): ``(S,)`` flat indices of the sources.
        dst (np.ndarray): ``(D, S)`` flat indices of the destinations (``D``
            directions in the order of :func:`search_destinations`).
    """
    radius: int
    size: Tuple[int, int]
    paths: Tuple[np.ndarray, ...]
    src: np.ndarray
    dst: np.ndarray

    @property
    def destinations(self) -> np.ndarray:
        """``(D, 2)`` offsets ``(dy, dx)`` of the destinations."""
        return search_destinations(self.radius)


@lru_cache(maxsize=32)
def get_path_index(radius: int, height: int, width: int) -> PathIndex:
    """The (cached) :class:`PathIndex` of a ``height x width`` grid."""
    reach = radius - 1
    rows, cols = height - reach, width - 2 * reach
    if rows <= 0 or cols <= 0:
        raise ValueError(f'grid {height}x{width} is too small for radius {radius}: '
                         f'it needs at least {radius} rows and {2 * radius - 1} columns')
    flat = np.arange(height * width, dtype=np.int64).reshape(height, width)

    def shifted(dy: int, dx: int) -> np.ndarray:
        return flat[dy:dy + rows, reach + dx:reach + dx + cols].reshape(-1)

    paths = []
    for group in search_paths(radius):
        paths.append(np.stack([np.stack([shifted(dy, dx) for dy, dx in cells])
                               for cells in group]))
    for array in paths:
        array.setflags(write=False)
    src = shifted(0, 0)
    dst = np.concatenate([group[:, 0] for group in paths])
    src.setflags(write=False)
    dst.setflags(write=False)
    return PathIndex(radius, (height, width), tuple(paths), src, dst)
