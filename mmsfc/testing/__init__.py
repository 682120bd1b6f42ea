# Copyright (c) mmsfc contributors. All rights reserved.
from .toy_voc import TOY_CLASSES, generate_toy_voc

__all__ = ['TOY_CLASSES', 'generate_toy_voc']
