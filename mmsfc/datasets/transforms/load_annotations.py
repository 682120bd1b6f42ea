# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Optional

import numpy as np
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS


def invalid_mask_values(mask: np.ndarray, num_classes: int, ignore_index: int = 255) -> list:
    """Values of a class-index mask outside ``0..num_classes-1`` and ``ignore_index``.

    Args:
        mask (np.ndarray): Mask of shape ``(H, W)``, any integer dtype.
        num_classes (int): Classes including the background, ``K + 1``.
        ignore_index (int): The ignored value. Defaults to 255.

    Returns:
        list[int]: The offending values, sorted (empty for a valid mask).
    """
    if mask.dtype == np.uint8:  # bincount is ~10x faster than unique on uint8
        values = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
    else:
        values = np.unique(mask)
    bad = values[((values < 0) | (values >= num_classes)) & (values != ignore_index)]
    return [int(v) for v in bad]


def check_mask(mask: np.ndarray, num_classes: int, path: str, ignore_index: int = 255) -> None:
    """Raise a ``ValueError`` naming ``path`` unless ``mask`` holds class indices.

    A valid mask is 2-D with values in ``0..num_classes-1`` or ``ignore_index``.
    The usual culprits are RGB-coloured masks and masks holding dataset ids
    (e.g. COCO category ids up to 90) instead of class indices.
    """
    if mask.ndim != 2:
        raise ValueError(f'mask {path} has shape {mask.shape}; expected (H, W) class indices, '
                         'not a colour image (save masks as single-channel or palette PNGs)')
    bad = invalid_mask_values(mask, num_classes, ignore_index)
    if bad:
        shown = ', '.join(map(str, bad[:20])) + (', ...' if len(bad) > 20 else '')
        raise ValueError(f'mask {path} holds values {shown} outside the class indices '
                         f'0..{num_classes - 1} and the ignored {ignore_index} (colour values '
                         'or category ids instead of class indices?)')


@TRANSFORMS.register_module()
class SFCLoadAnnotations(LoadAnnotations):
    """mmseg's :class:`LoadAnnotations` that refuses masks it would misread.

    After loading (and any ``label_map`` / ``reduce_zero_label`` of mmseg),
    the mask ``gt_seg_map`` of shape ``(H, W)`` must hold class indices
    ``0..K`` (``K + 1`` classes with the background) or ``ignore_index``;
    otherwise a ``ValueError`` names the file and the offending values. Plain
    ``LoadAnnotations`` passes such values on, where the loss fails later
    without a file name ("Target 40 is out of bounds") or the metric silently
    drops them.

    Args:
        num_classes (int, optional): ``K + 1``. Defaults to the
            ``num_classes`` of the data info, which :class:`SFCVOCDataset`
            sets from its class list.
        ignore_index (int): The ignored value. Defaults to 255.
        **kwargs: Passed to :class:`mmseg.datasets.transforms.LoadAnnotations`.
    """

    def __init__(self, num_classes: Optional[int] = None, ignore_index: int = 255,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        super()._load_seg_map(results)
        num_classes = self.num_classes or results.get('num_classes')
        if num_classes is None:
            raise ValueError('SFCLoadAnnotations needs num_classes: give it, or use a dataset '
                             'that puts it into the data info (SFCVOCDataset, SFCCOCODataset)')
        check_mask(results['gt_seg_map'], num_classes, results['seg_map_path'],
                   self.ignore_index)

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
