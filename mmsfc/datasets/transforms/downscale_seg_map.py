# Copyright (c) mmsfc contributors. All rights reserved.
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SFCDownscaleSegMap(BaseTransform):
    """Bring the label map to the network's output grid (IRN affinity labels).

    The label map (0 background, 1..K, 255 unknown) is rescaled by ``scale``
    with nearest neighbour (PIL, as IRN: a 512 crop becomes 128x128).
    :class:`IRNAffinityDisplacementLoss` turns it into the pair labels
    (background-positive, foreground-positive, negative) with the cached path
    indices of the grid.

    Required keys: ``gt_seg_map``. Modified keys: ``gt_seg_map``.

    Args:
        scale (float): Factor (0.25 for the stride-4 grid).
    """

    def __init__(self, scale: float = 0.25) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f'scale must be positive, got {scale}')
        self.scale = scale

    def transform(self, results: dict) -> dict:
        label = results['gt_seg_map']
        height, width = label.shape[:2]
        size = (int(np.round(width * self.scale)), int(np.round(height * self.scale)))
        results['gt_seg_map'] = mmcv.imresize(label, size, interpolation='nearest',
                                              backend='pillow')
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(scale={self.scale})'
