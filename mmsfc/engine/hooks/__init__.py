# Copyright (c) mmsfc contributors. All rights reserved.
from .distribution_coefficient_hook import DistributionCoefficientHook

__all__ = ['DistributionCoefficientHook']
