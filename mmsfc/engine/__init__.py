# Copyright (c) mmsfc contributors. All rights reserved.
from .checkpoint import (
                         add_checkpoint_match_hook,
                         count_matching_tensors,
                         load_from_local_trusted,
                         trusted_local_checkpoints,
)
from .distributed import SFCDistributedDataParallel, setup_cpu_distributed, teardown_distributed
from .hooks import *  # noqa: F401,F403
from .irn_masks import IRNMaskGenerator
from .optimizers import SFCOptimWrapperConstructor
from .pseudo_labels import PseudoLabelGenerator
from .region_labels import RegionLabelWriter
from .tool_config import add_data_root_argument, enable_amp, load_tool_config, set_data_root

__all__ = [
    'IRNMaskGenerator', 'PseudoLabelGenerator', 'RegionLabelWriter', 'SFCDistributedDataParallel',
    'SFCOptimWrapperConstructor',
    'add_checkpoint_match_hook', 'add_data_root_argument', 'count_matching_tensors', 'enable_amp',
    'load_from_local_trusted', 'load_tool_config', 'set_data_root', 'setup_cpu_distributed',
    'teardown_distributed', 'trusted_local_checkpoints'
]
