# Copyright (c) mmsfc contributors. All rights reserved.
from .sfc_classifier import SFCClassifier

__all__ = ['SFCClassifier']
