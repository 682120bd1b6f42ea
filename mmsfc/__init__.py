# Copyright (c) mmsfc contributors. All rights reserved.
"""mmsfc: SFC (Shared Feature Calibration, AAAI 2024) as an mmseg 1.x plugin.

Importing the package registers every component into mmseg's registries and
mmengine's checkpoint loader for local files that works with torch >= 2.6
(see :mod:`mmsfc.engine.checkpoint`).
"""
from . import datasets, engine, evaluation, models  # noqa: F401  (registration)
from .engine import register_checkpoint_loader
from .version import __version__, version_info

register_checkpoint_loader()

__all__ = ['__version__', 'version_info']
