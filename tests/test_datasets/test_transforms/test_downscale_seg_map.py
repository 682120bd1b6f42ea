# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
from PIL import Image

from mmsfc.datasets.transforms import SFCDownscaleSegMap


def test_label_is_downscaled_with_pil_nearest():
    label = np.random.default_rng(0).choice(np.array([0, 1, 2, 255], np.uint8), (64, 48))
    out = SFCDownscaleSegMap(0.25)(dict(gt_seg_map=label))['gt_seg_map']
    assert out.shape == (16, 12)
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(label).resize((12, 16),
                                                                              Image.NEAREST)))
    # PIL's nearest samples the centre of each 4x4 block
    np.testing.assert_array_equal(out, label[2::4, 2::4])
