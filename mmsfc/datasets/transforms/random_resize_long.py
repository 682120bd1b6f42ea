# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SFCRandomResizeLong(BaseTransform):
    """Resize so that the long side is a random integer in ``long_range``.

    The aspect ratio is kept. This is SIPE's / IRN's ``random_resize_long``
    (bicubic, long side uniform in [320, 640]); the SFC authors' released
    loader has it disabled, so the SFC configs leave it out (docs/method_notes.md §10).
    Segmentation maps are resized by nearest neighbour.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``,
    ``scale_factor``, the keys in ``seg_fields``.

    Args:
        long_range (tuple[int, int]): Inclusive range of the long side.
        interpolation (str): Image interpolation. Defaults to ``'bicubic'``.
    """

    def __init__(self, long_range: Tuple[int, int] = (320, 640),
                 interpolation: str = 'bicubic') -> None:
        super().__init__()
        low, high = long_range
        if not 0 < low <= high:
            raise ValueError(f'long_range must satisfy 0 < low <= high, got {long_range}')
        self.long_range = (int(low), int(high))
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        target = np.random.randint(self.long_range[0], self.long_range[1] + 1)
        height, width = results['img'].shape[:2]
        scale = target / max(height, width)
        size = (round(width * scale), round(height * scale))
        results['img'] = mmcv.imresize(results['img'], size, interpolation=self.interpolation)
        for key in results.get('seg_fields', []):
            results[key] = mmcv.imresize(results[key], size, interpolation='nearest')
        results['img_shape'] = results['img'].shape[:2]
        results['scale_factor'] = (size[0] / width, size[1] / height)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(long_range={self.long_range}, '
                f'interpolation={self.interpolation!r})')
