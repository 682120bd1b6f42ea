# Copyright (c) mmsfc contributors. All rights reserved.
"""mmsfc: SFC (Shared Feature Calibration, AAAI 2024) as an mmseg 1.x plugin.

Importing the package registers every component into mmseg's registries and
changes nothing else (the tools' checkpoint loader for torch >= 2.6 is scoped
to them, see :mod:`mmsfc.engine.checkpoint`).
"""
from . import datasets, engine, evaluation, models  # noqa: F401  (registration)
from .version import __version__, version_info

__all__ = ['__version__', 'version_info']
