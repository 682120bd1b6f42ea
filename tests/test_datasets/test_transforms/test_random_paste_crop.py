# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
import pytest

from mmsfc.datasets.transforms import SFCRandomPasteCrop


def run(img, seg=None, crop_size=8, seed=0):
    np.random.seed(seed)
    results = dict(img=img, seg_fields=[])
    if seg is not None:
        results['gt_seg_map'] = seg
        results['seg_fields'] = ['gt_seg_map']
    return SFCRandomPasteCrop(crop_size=crop_size, fill=(1.0, 2.0, 3.0))(results)


def test_small_image_is_pasted_whole():
    img = np.random.randint(10, 250, (5, 6, 3)).astype(np.uint8)
    seg = np.ones((5, 6), np.uint8)
    for seed in range(10):
        out = run(img, seg, seed=seed)
        top, bottom, left, right = out['valid_box']
        assert (bottom - top, right - left) == (5, 6)
        np.testing.assert_array_equal(out['img'][top:bottom, left:right], img)
        outside = np.ones((8, 8), bool)
        outside[top:bottom, left:right] = False
        np.testing.assert_array_equal(out['img'][outside], np.tile([1.0, 2.0, 3.0],
                                                                   (outside.sum(), 1)))
        assert (out['gt_seg_map'][outside] == 255).all()
        assert (out['gt_seg_map'][top:bottom, left:right] == 1).all()
        assert out['img'].dtype == np.float32 and out['img_shape'] == (8, 8)


def test_large_side_is_cropped_small_side_pasted():
    img = np.arange(12 * 4 * 3).reshape(12, 4, 3).astype(np.uint8)
    offsets = set()
    for seed in range(20):
        out = run(img, seed=seed)
        top, bottom, left, right = out['valid_box']
        assert (top, bottom) == (0, 8) and right - left == 4
        rows = out['img'][:, left, 0]
        start = int(rows[0]) // 12  # value of row r, column 0, channel 0 is 12 * r
        np.testing.assert_array_equal(out['img'][:, left:right], img[start:start + 8])
        offsets.add((start, left))
    assert len(offsets) > 3  # random placement


def test_invalid_crop_size():
    with pytest.raises(ValueError, match='crop_size'):
        SFCRandomPasteCrop(crop_size=0)
