# Copyright (c) mmsfc contributors. All rights reserved.
from .colormap import voc_colormap
from .samplers import *  # noqa: F401,F403
from .sfc_coco import COCO_OBJECT_CLASSES, SFCCOCODataset
from .sfc_voc import SFCVOCDataset
from .shapes import (
    SHAPES_CLASSES,
    SHAPES_FREQUENCIES,
    SHAPES_STYLES,
    SFCShapesDataset,
    draw_shapes_image,
    generate_shapes_dataset,
)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'COCO_OBJECT_CLASSES', 'SHAPES_CLASSES', 'SHAPES_FREQUENCIES', 'SHAPES_STYLES',
    'SFCCOCODataset', 'SFCShapesDataset', 'SFCVOCDataset', 'draw_shapes_image',
    'generate_shapes_dataset', 'voc_colormap'
]
