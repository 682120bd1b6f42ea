# Copyright (c) mmsfc contributors. All rights reserved.
from .efficientnet_lite import EfficientNetLite, SameStride2Conv2d
from .efficientnet_lite_weights import (
    convert_efficientnet_lite,
    efficientnet_lite_file,
    load_from_efficientnet_lite,
)

__all__ = ['EfficientNetLite', 'SameStride2Conv2d', 'convert_efficientnet_lite',
           'efficientnet_lite_file', 'load_from_efficientnet_lite']
