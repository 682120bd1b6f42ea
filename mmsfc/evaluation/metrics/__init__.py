# Copyright (c) mmsfc contributors. All rights reserved.
from .cam_class_balance_metric import SFCClassBalanceMetric
from .sfc_cam_metric import SFCCAMMetric

__all__ = ['SFCCAMMetric', 'SFCClassBalanceMetric']
