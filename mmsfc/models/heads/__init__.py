# Copyright (c) mmsfc contributors. All rights reserved.
from .sfc_prototype_head import SFCPrototypeHead

__all__ = ['SFCPrototypeHead']
