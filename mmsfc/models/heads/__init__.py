# Copyright (c) mmsfc contributors. All rights reserved.
from .sfc_deeplabv2_head import SFCDeepLabV2Head
from .sfc_prototype_head import SFCPrototypeHead

__all__ = ['SFCDeepLabV2Head', 'SFCPrototypeHead']
