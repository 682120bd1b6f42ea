# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
import pytest

from mmsfc.postprocess.path_index import get_path_index, search_destinations, search_paths


@pytest.mark.parametrize('radius', [2, 3, 5])
def test_pairs_match_brute_force_enumeration(radius):
    height, width = 9, 11
    index = get_path_index(radius, height, width)
    # brute force: every cell whose whole half-disc of destinations is inside
    expected = set()
    for y in range(height):
        for x in range(width):
            offsets = [(dy, dx) for dy in range(0, radius) for dx in range(-radius, radius + 1)
                       if dy * dy + dx * dx < radius * radius and (dy > 0 or dx > 0)]
            if all(0 <= y + dy < height and 0 <= x + dx < width for dy, dx in offsets):
                expected |= {(y * width + x, (y + dy) * width + x + dx) for dy, dx in offsets}
    got = {(int(s), int(d)) for row, d_row in zip(index.src, index.dst.T)
           for s, d in zip([row] * len(d_row), d_row)}
    assert got == expected
    assert len(got) == index.dst.size  # no pair twice


def test_paths_are_straight_and_inside_the_box():
    paths = {tuple(p[0]): [tuple(c) for c in p] for g in search_paths(4) for p in g.tolist()}
    assert sorted(paths[(0, 3)]) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert sorted(paths[(3, 0)]) == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert {(0, 0), (1, 1), (2, 2)} <= set(paths[(2, 2)])
    assert (0, 2) not in paths[(2, 2)] and (2, 0) not in paths[(2, 2)]
    for (dy, dx), cells in paths.items():
        assert cells[0] == (dy, dx)  # destination first
        assert (0, 0) in cells
        assert all(min(0, dy) <= y <= max(0, dy) and min(0, dx) <= x <= max(0, dx)
                   for y, x in cells)


def test_path_indices_follow_the_offsets_and_are_cached():
    index = get_path_index(3, 7, 8)
    assert get_path_index(3, 7, 8) is index
    offsets = search_destinations(3)
    flat = np.arange(56).reshape(7, 8)
    ys, xs = np.unravel_index(index.src, (7, 8))
    for k, (dy, dx) in enumerate(offsets):
        np.testing.assert_array_equal(index.dst[k], flat[ys + dy, xs + dx])
    with pytest.raises(ValueError, match='too small'):
        get_path_index(10, 8, 8)
