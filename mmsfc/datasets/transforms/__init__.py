# Copyright (c) mmsfc contributors. All rights reserved.
from .random_paste_crop import SFCRandomPasteCrop

__all__ = ['SFCRandomPasteCrop']
