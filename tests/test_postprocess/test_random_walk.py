# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmsfc.postprocess.path_index import get_path_index, search_destinations
from mmsfc.postprocess.random_walk import (
    RandomWalkParams,
    affinity_labels,
    edge_to_affinity,
    propagate,
    sfc_masks,
)


def dense_reference(x, edge, radius, beta, exp_times):
    """IRN's dense walk, built by brute force over all cell pairs (float64)."""
    height, width = edge.shape
    cells = [(y, x_) for y in range(height) for x_ in range(width)]
    affinity = np.eye(len(cells))
    for i, (y0, x0) in enumerate(cells):
        for j, (y1, x1) in enumerate(cells):
            dy, dx = y1 - y0, x1 - x0
            if i == j or dy * dy + dx * dx >= radius * radius:
                continue
            path = [edge[y0 + py, x0 + px]
                    for py in range(min(0, dy), max(0, dy) + 1)
                    for px in range(min(0, dx), max(0, dx) + 1)
                    if (dy * px - dx * py) ** 2 < dy * dy + dx * dx]
            affinity[i, j] = 1 - max(path)
    transition = affinity ** beta
    transition /= transition.sum(axis=0, keepdims=True)
    for _ in range(exp_times):
        transition = transition @ transition
    state = (x * (1 - edge)).reshape(x.shape[0], -1)
    return (state @ transition).reshape(x.shape)


def test_sparse_walk_equals_the_dense_squared_transition():
    rng = np.random.default_rng(0)
    edge = rng.uniform(0, 0.6, (7, 9))
    x = rng.uniform(0, 1, (2, 7, 9))
    expected = dense_reference(x, edge, radius=3, beta=10, exp_times=5)
    got = propagate(torch.tensor(x, dtype=torch.float32), torch.tensor(edge, dtype=torch.float32),
                    radius=3, beta=10, exp_times=5)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_walk_spreads_inside_a_region_and_not_across_an_edge():
    edge = torch.zeros(12, 12)
    edge[:, 6] = 1.0  # a wall
    x = torch.zeros(1, 12, 12)
    x[0, 5, 1] = 1.0  # one seed on the left
    out = propagate(x, edge, radius=5, beta=10, exp_times=8)[0]
    assert torch.all(out[:, :6] > 0)  # reached every left cell
    assert torch.all(out[:, 6:] == 0)  # nothing crossed
    assert out[:, :6].max() / out[:, :6].min() < 2  # nearly uniform after 256 steps


def test_affinity_labels_on_a_hand_made_map():
    label = torch.tensor([[0, 0, 1, 1, 255],
                          [0, 0, 1, 1, 1],
                          [0, 255, 0, 1, 1],
                          [0, 0, 0, 1, 1]])
    index = get_path_index(2, 4, 5)
    bg_pos, fg_pos, neg = (m[0] for m in affinity_labels(label[None], index))
    offsets = [tuple(o) for o in search_destinations(2)]

    def pair(y, x, dy, dx):
        s = int(np.flatnonzero(index.src == y * 5 + x)[0])
        k = offsets.index((dy, dx))
        return bg_pos[k, s].item(), fg_pos[k, s].item(), neg[k, s].item()

    assert pair(0, 1, 1, 0) == (1, 0, 0)  # background inside
    assert pair(0, 2, 1, 0) == (0, 1, 0)  # foreground inside
    assert pair(0, 1, 0, 1) == (0, 0, 1)  # across the boundary
    assert pair(1, 2, 1, 0) == (0, 0, 1)
    assert pair(0, 3, 0, 1) == (0, 0, 0)  # 255 is ignored
    assert pair(2, 1, 0, 1) == (0, 0, 0)  # ... as a source too
    assert pair(0, 1, 1, -1) == (1, 0, 0)
    assert pair(1, 2, 1, 1) == (0, 1, 0)
    assert torch.all(bg_pos + fg_pos + neg <= 1)


def test_edge_to_affinity_takes_the_largest_edge_on_the_path():
    edge = torch.zeros(1, 5, 7)
    edge[0, 1, 3] = 0.8
    index = get_path_index(3, 5, 7)
    aff = edge_to_affinity(edge, index)[0]
    offsets = [tuple(o) for o in search_destinations(3)]
    s = int(np.flatnonzero(index.src == 0 * 7 + 3)[0])  # source (0, 3)
    assert aff[offsets.index((2, 0)), s] == pytest.approx(0.2)  # path through (1, 3)
    assert aff[offsets.index((0, 1)), s] == pytest.approx(1.0)
    assert aff[offsets.index((1, 0)), s] == pytest.approx(0.2)  # destination on the edge


def _two_region_cams(weak=1.0):
    """36x36 image, grid 9x9 with a wall on column 4 between two mirrored regions.

    Class 3 scores 1 on the left and ``weak`` on the right (0 = background).
    """
    cam_w = np.zeros((2, 36, 36), np.float32)
    cam_w[1, :, :18] = 1.0
    cam_w[1, :, 18:] = weak
    if weak == 0:
        cam_w[0, :, 18:] = 1.0
    edge = torch.zeros(9, 9)
    edge[:, 4] = 1.0
    return cam_w, cam_w.copy(), edge


def test_two_walks_label_each_side_of_an_edge():
    cam_w, cam_p, edge = _two_region_cams(weak=0.0)
    label = sfc_masks([0, 3], cam_w, cam_p, edge)
    assert label.dtype == np.uint8 and label.shape == (36, 36)
    assert np.all(label[:, :12] == 3)
    assert np.all(label[:, 24:] == 0)


def test_two_walks_rule_constants():
    # On the right class 3 scores 0.2 and the background 0: in walk 2 both
    # channels are 0.52 there (background rule), so walk 1 decides: 0.2^1.3 of
    # the left's maximum against the constant background 0.25.
    cam_w, cam_p, edge = _two_region_cams(weak=0.2)
    label = sfc_masks([0, 3], cam_w, cam_p, edge)
    assert np.all(label[:, :12] == 3) and np.all(label[:, 24:] == 0)
    label = sfc_masks([0, 3], cam_w, cam_p, edge, RandomWalkParams(fg_bg_score=0.0))
    assert np.all(label[:, 24:] == 3)
    # walk 2 alone (no walk-1 background) with a large offset: background
    label = sfc_masks([0, 3], cam_w, cam_p, edge, RandomWalkParams(fg_bg_score=0.0,
                                                                   bg_offset=3.0))
    assert np.all(label[:, 24:] == 0) and np.all(label[:, :12] == 3)
    # background only: everything is background
    assert np.all(sfc_masks([0], cam_w[:1], cam_p[:1], edge) == 0)
    with pytest.raises(ValueError, match='does not match'):
        sfc_masks([0, 3], cam_w, cam_p, torch.zeros(8, 9))


def test_two_walks_as_two_separate_walks():
    """The walks run as one, stacked: the labels of two separate ``propagate`` calls."""
    generator = torch.Generator().manual_seed(0)
    height, width, params = 37, 45, RandomWalkParams()
    cam_w = torch.rand(4, height, width, generator=generator).numpy()
    cam_p = torch.rand(4, height, width, generator=generator).numpy()
    edge = torch.rand(10, 12, generator=generator) ** 4
    cams = torch.from_numpy(cam_w + params.alpha * cam_p) * params.fg_scale
    cams[0] = torch.from_numpy(cam_w[0] + params.bg_offset
                               + params.alpha * (cam_p[0] + params.bg_offset))
    cams = torch.nn.functional.interpolate(cams[:, None], (10, 12), mode='bilinear',
                                           align_corners=False)[:, 0]

    def walked(x):
        up = torch.nn.functional.interpolate(propagate(x, edge)[None], scale_factor=4,
                                             mode='bilinear', align_corners=False)
        up = up[0, :, :height, :width]
        return up / up.max()

    first = torch.cat([torch.full((1, height, width), params.fg_bg_score),
                       walked(cams[1:] ** params.fg_power)])
    second = walked(cams ** params.all_power)
    expected = np.array([0, 2, 5, 7])[(first + second).argmax(0).numpy()]
    label = sfc_masks([0, 2, 5, 7], cam_w, cam_p, edge)
    assert len(np.unique(label)) > 2  # a label map with content, not one class
    np.testing.assert_array_equal(label, expected)
