# Copyright (c) mmsfc contributors. All rights reserved.
from .cam_ops import (
    background_rule,
    l2_normalize,
    label_to_channel_mask,
    masked_prototypes,
    max_normalize,
    normalized_cam_with_background,
    prototype_cam,
    seed_masks,
)
from .sparse_resize import bilinear_taps, resize_pointwise

__all__ = [
    'background_rule', 'label_to_channel_mask', 'l2_normalize', 'masked_prototypes',
    'max_normalize', 'normalized_cam_with_background', 'prototype_cam', 'seed_masks',
    'bilinear_taps', 'resize_pointwise'
]
