# Copyright (c) mmsfc contributors. All rights reserved.
from .sfc_optim_wrapper_constructor import SFCOptimWrapperConstructor

__all__ = ['SFCOptimWrapperConstructor']
