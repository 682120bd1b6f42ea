# Copyright (c) mmsfc contributors. All rights reserved.
from .msdw_loss import MSDWLoss, distribution_coefficients

__all__ = ['MSDWLoss', 'distribution_coefficients']
