# Copyright (c) mmsfc contributors. All rights reserved.
from .samplers import *  # noqa: F401,F403
from .sfc_coco import COCO_OBJECT_CLASSES, SFCCOCODataset
from .sfc_voc import SFCVOCDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['COCO_OBJECT_CLASSES', 'SFCCOCODataset', 'SFCVOCDataset']
