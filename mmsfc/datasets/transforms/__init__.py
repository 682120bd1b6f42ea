# Copyright (c) mmsfc contributors. All rights reserved.
from .load_annotations import SFCLoadAnnotations, check_mask, invalid_mask_values
from .random_paste_crop import SFCRandomPasteCrop
from .random_resize_long import SFCRandomResizeLong

__all__ = ['SFCLoadAnnotations', 'SFCRandomPasteCrop', 'SFCRandomResizeLong', 'check_mask',
           'invalid_mask_values']
