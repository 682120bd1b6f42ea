# Copyright (c) mmsfc contributors. All rights reserved.
from .cam_to_pseudo_label_hook import CAMToPseudoLabelHook
from .checkpoint_match_hook import CheckpointMatchHook
from .distribution_coefficient_hook import DistributionCoefficientHook

__all__ = ['CAMToPseudoLabelHook', 'CheckpointMatchHook', 'DistributionCoefficientHook']
