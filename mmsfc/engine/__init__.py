# Copyright (c) mmsfc contributors. All rights reserved.
from .checkpoint import load_from_local_trusted, register_checkpoint_loader
from .distributed import SFCDistributedDataParallel, setup_cpu_distributed
from .hooks import *  # noqa: F401,F403
from .optimizers import SFCOptimWrapperConstructor
from .pseudo_labels import PseudoLabelGenerator
from .tool_config import add_data_root_argument, load_tool_config, set_data_root

__all__ = [
    'PseudoLabelGenerator', 'SFCDistributedDataParallel', 'SFCOptimWrapperConstructor',
    'add_data_root_argument', 'load_from_local_trusted', 'load_tool_config',
    'register_checkpoint_loader', 'set_data_root', 'setup_cpu_distributed'
]
