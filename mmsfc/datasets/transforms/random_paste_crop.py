# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


def _placement(size: int, crop_size: int) -> Tuple[int, int, int]:
    """Random ``(canvas_start, image_start, length)`` along one axis.

    A side longer than ``crop_size`` is cropped at a random offset; a shorter
    side is pasted whole at a random offset of the canvas.
    """
    length = min(size, crop_size)
    space = size - crop_size
    if space > 0:
        return 0, int(np.random.randint(space + 1)), length
    return int(np.random.randint(-space + 1)), 0, length


@TRANSFORMS.register_module()
class SFCRandomPasteCrop(BaseTransform):
    """Paste the image at a random offset into a square canvas (docs/method_notes.md §10).

    Each axis independently: a side longer than ``crop_size`` is cropped at a
    random offset, a shorter one is pasted whole at a random offset. The
    canvas is filled with ``fill``; choose the normaliser's mean so that the
    padding normalises to 0 (the authors pad the normalised image with 0).
    The image becomes float32. The region holding the image is recorded as
    ``valid_box = (top, bottom, left, right)``, which :class:`SFCClassifier`
    turns into the valid mask. Segmentation maps are pasted into a canvas of
    ``seg_pad_val``.

    Put resizing and flipping *before* this transform: ``valid_box`` refers to
    the canvas it writes.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``, the keys in
    ``seg_fields``. Added keys: ``valid_box``.

    Args:
        crop_size (int): Side of the canvas. Defaults to 512.
        fill (Sequence[float]): Canvas value per channel, in the channel order
            of ``img`` (BGR after ``LoadImageFromFile``). Defaults to the
            ImageNet mean in BGR, ``(103.53, 116.28, 123.675)``.
        seg_pad_val (int): Canvas value of segmentation maps. Defaults to 255.
    """

    def __init__(self,
                 crop_size: int = 512,
                 fill: Sequence[float] = (103.53, 116.28, 123.675),
                 seg_pad_val: int = 255) -> None:
        super().__init__()
        if crop_size <= 0:
            raise ValueError(f'crop_size must be positive, got {crop_size}')
        self.crop_size = crop_size
        self.fill = tuple(fill)
        self.seg_pad_val = seg_pad_val

    def transform(self, results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        top, img_top, crop_h = _placement(height, self.crop_size)
        left, img_left, crop_w = _placement(width, self.crop_size)
        src = (slice(img_top, img_top + crop_h), slice(img_left, img_left + crop_w))
        dst = (slice(top, top + crop_h), slice(left, left + crop_w))

        canvas = np.empty((self.crop_size, self.crop_size, img.shape[2]), np.float32)
        canvas[...] = np.asarray(self.fill, np.float32)
        canvas[dst] = img[src]
        results['img'] = canvas
        for key in results.get('seg_fields', []):
            seg = np.full((self.crop_size, self.crop_size), self.seg_pad_val,
                          dtype=results[key].dtype)
            seg[dst] = results[key][src]
            results[key] = seg
        results['img_shape'] = canvas.shape[:2]
        results['valid_box'] = (top, top + crop_h, left, left + crop_w)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'fill={self.fill}, seg_pad_val={self.seg_pad_val})')
