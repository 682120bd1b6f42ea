# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
import pytest
from PIL import Image

from mmsfc.datasets.transforms import SFCRandomRescale


def test_factor_in_range_image_bicubic_label_nearest():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)
    label = rng.choice(np.array([0, 3, 255], np.uint8), (40, 30))
    np.random.seed(0)
    factors = []
    for _ in range(20):
        out = SFCRandomRescale((0.5, 1.0))(dict(img=img, gt_seg_map=label,
                                                 seg_fields=['gt_seg_map']))
        factor = out['scale_factor'][0]
        factors.append(factor)
        size = (int(np.round(30 * factor)), int(np.round(40 * factor)))
        assert out['img'].shape == (size[1], size[0], 3) == (*out['img_shape'], 3)
        expected = np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))
        np.testing.assert_array_equal(out['img'], expected)
        assert set(np.unique(out['gt_seg_map'])) <= {0, 3, 255}  # nearest: no new values
    assert 0.5 <= min(factors) and max(factors) <= 1.0 and max(factors) - min(factors) > 0.2


def test_bad_range_is_refused():
    with pytest.raises(ValueError, match='scale_range'):
        SFCRandomRescale((0.5, 1.0, 1.5))
