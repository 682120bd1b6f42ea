# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
import pytest

from mmsfc.datasets.transforms import SFCRandomResizeLong


def test_long_side_in_range_and_ratio_kept():
    np.random.seed(0)
    transform = SFCRandomResizeLong(long_range=(30, 40))
    longs = set()
    for _ in range(30):
        seg = np.zeros((50, 100), np.uint8)
        seg[:, 50:] = 3
        out = transform(dict(img=np.zeros((50, 100, 3), np.uint8), gt_seg_map=seg,
                             seg_fields=['gt_seg_map']))
        height, width = out['img'].shape[:2]
        assert 30 <= width <= 40 and abs(height - width / 2) <= 0.5
        assert out['gt_seg_map'].shape == (height, width)
        assert set(np.unique(out['gt_seg_map'])) == {0, 3}  # nearest: no new values
        longs.add(width)
    assert len(longs) > 5


def test_invalid_range():
    with pytest.raises(ValueError, match='long_range'):
        SFCRandomResizeLong(long_range=(50, 40))
