# Copyright (c) mmsfc contributors. All rights reserved.
from .downscale_seg_map import SFCDownscaleSegMap
from .load_annotations import SFCLoadAnnotations, check_mask, invalid_mask_values
from .random_paste_crop import SFCRandomPasteCrop
from .random_rescale import SFCRandomRescale
from .random_resize_long import SFCRandomResizeLong

__all__ = ['SFCDownscaleSegMap', 'SFCLoadAnnotations', 'SFCRandomPasteCrop', 'SFCRandomRescale',
           'SFCRandomResizeLong', 'check_mask', 'invalid_mask_values']
