# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SFCRandomRescale(BaseTransform):
    """Rescale by a factor drawn uniformly from ``scale_range`` (IRN training).

    The image is resized with PIL's bicubic filter, segmentation maps with
    nearest neighbour, to ``round(side * factor)`` as IRN's ``random_scale``.
    The authors pass ``(0.5, 1.0, 1.5)`` and only the first two entries are
    used, so their effective range is ``(0.5, 1.0)``: give that range here.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``, the keys
    in ``seg_fields``. Added keys: ``scale_factor``.

    Args:
        scale_range (Sequence[float]): ``(low, high)`` of the factor.
    """

    def __init__(self, scale_range: Sequence[float] = (0.5, 1.0)) -> None:
        super().__init__()
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f'scale_range must be (low, high) with 0 < low <= high, '
                             f'got {scale_range}')
        self.scale_range = tuple(scale_range)

    def transform(self, results: dict) -> dict:
        low, high = self.scale_range
        factor = low + np.random.random() * (high - low)
        height, width = results['img'].shape[:2]
        size = (int(np.round(width * factor)), int(np.round(height * factor)))
        results['img'] = mmcv.imresize(results['img'], size, interpolation='bicubic',
                                       backend='pillow')
        for key in results.get('seg_fields', []):
            results[key] = mmcv.imresize(results[key], size, interpolation='nearest',
                                         backend='pillow')
        results['img_shape'] = results['img'].shape[:2]
        results['scale_factor'] = (factor, factor)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(scale_range={self.scale_range})'
