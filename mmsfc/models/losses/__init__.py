# Copyright (c) mmsfc contributors. All rights reserved.
from .irn_affinity_displacement_loss import IRNAffinityDisplacementLoss
from .msdw_loss import MSDWLoss, distribution_coefficients

__all__ = ['IRNAffinityDisplacementLoss', 'MSDWLoss', 'distribution_coefficients']
