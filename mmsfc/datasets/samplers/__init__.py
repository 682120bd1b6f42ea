# Copyright (c) mmsfc contributors. All rights reserved.
from .ibr_batch_sampler import IBRBatchSampler

__all__ = ['IBRBatchSampler']
