# Copyright (c) mmsfc contributors. All rights reserved.
from .sfc_cam_metric import SFCCAMMetric

__all__ = ['SFCCAMMetric']
