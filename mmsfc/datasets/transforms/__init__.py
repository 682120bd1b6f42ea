# Copyright (c) mmsfc contributors. All rights reserved.
from .random_paste_crop import SFCRandomPasteCrop
from .random_resize_long import SFCRandomResizeLong

__all__ = ['SFCRandomPasteCrop', 'SFCRandomResizeLong']
