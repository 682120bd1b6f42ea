# Copyright (c) mmsfc contributors. All rights reserved.
"""Config loading shared by the command-line tools."""
import os.path as osp
import sys
from typing import Iterable, Optional, Tuple

from mmengine.config import Config

from .checkpoint import add_checkpoint_match_hook


def load_tool_config(config: str,
                     cfg_options: Optional[dict] = None,
                     launcher: str = 'none',
                     work_dir: Optional[str] = None,
                     required_files: Iterable[Tuple[str, str]] = ()) -> Config:
    """Load ``config`` as the mmseg tools do, with one-line errors.

    Exits with ``error: <what> file not found: <path>`` (no traceback) when
    the config or a ``(path, what)`` of ``required_files`` is missing. Then
    applies ``cfg_options``, sets the launcher, and the work directory by
    priority: ``work_dir`` > the config's > ``./work_dirs/<config name>``, and
    adds a ``CheckpointMatchHook`` (a warning when a loaded checkpoint lacks
    model tensors).
    """
    for path, what in [(config, 'config'), *required_files]:
        if not osp.isfile(path):
            sys.exit(f'error: {what} file not found: {path}')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return add_checkpoint_match_hook(cfg)
