# Copyright (c) mmsfc contributors. All rights reserved.
"""Config loading shared by the command-line tools."""
import argparse
import os.path as osp
import sys
from typing import Any, Iterable, List, Optional, Tuple

from mmengine.config import Config

from .checkpoint import add_checkpoint_match_hook


def set_data_root(cfg: Config, data_root: str) -> List[str]:
    """Point every dataset of ``cfg`` at ``data_root``.

    Rewrites the top-level ``data_root`` and every ``data_root`` key found
    anywhere in the config: the train / val / test dataloaders, the
    dataloaders of ``custom_hooks`` (e.g. ``CAMToPseudoLabelHook``) and the
    datasets nested in wrappers (``dataset=dict(dataset=...)``). Paths of a
    dataset (``ann_file``, ``data_prefix``, label files) stay relative to it.
    A dataloader copied at parse time (``test_dataloader = val_dataloader``)
    is a separate dict in the loaded config and is rewritten as well, so the
    config the runner dumps into the work directory names the new root in
    every loader.

    Args:
        cfg (Config): The loaded config, changed in place.
        data_root (str): The new dataset root.

    Returns:
        list[str]: The dotted keys that were rewritten (``data_root`` first).
    """
    changed = ['data_root']
    cfg.data_root = data_root

    def visit(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key in list(node.keys()):
                if key == 'data_root' and prefix:
                    node[key] = data_root
                    changed.append(f'{prefix}.{key}')
                else:
                    visit(node[key], f'{prefix}.{key}' if prefix else str(key))
        elif isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                visit(item, f'{prefix}.{i}')

    for key in list(cfg.keys()):
        if key != 'data_root':
            visit(cfg[key], key)
    return changed


def add_data_root_argument(parser: argparse.ArgumentParser) -> None:
    """``--data-root DIR``: the dataset root of every dataloader (see :func:`set_data_root`)."""
    parser.add_argument(
        '--data-root', help='dataset root for every dataloader of the config (train, val, '
        'test, the pseudo-label hook, wrapped datasets); same as --cfg-options data_root=DIR')


def load_tool_config(config: str,
                     cfg_options: Optional[dict] = None,
                     launcher: str = 'none',
                     work_dir: Optional[str] = None,
                     required_files: Iterable[Tuple[str, str]] = (),
                     data_root: Optional[str] = None) -> Config:
    """Load ``config`` as the mmseg tools do, with one-line errors.

    Exits with ``error: <what> file not found: <path>`` (no traceback) when
    the config or a ``(path, what)`` of ``required_files`` is missing. Then
    applies ``cfg_options``, sets the launcher, and the work directory by
    priority: ``work_dir`` > the config's > ``./work_dirs/<config name>``, and
    adds a ``CheckpointMatchHook`` (a warning when a loaded checkpoint lacks
    model tensors).

    The dataset root moves with one setting: ``data_root`` (``--data-root``)
    or a top-level ``data_root`` in ``cfg_options`` (``--cfg-options
    data_root=DIR``, which a plain merge would leave without effect on the
    already-built dataloaders) is applied to every dataset by
    :func:`set_data_root`, after the other options.
    """
    for path, what in [(config, 'config'), *required_files]:
        if not osp.isfile(path):
            sys.exit(f'error: {what} file not found: {path}')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    cfg_options = dict(cfg_options or {})
    option_root = cfg_options.pop('data_root', None)
    if data_root is not None and option_root is not None and data_root != option_root:
        sys.exit(f'error: --data-root {data_root} and --cfg-options data_root={option_root} '
                 'disagree')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    data_root = data_root if data_root is not None else option_root
    if data_root is not None:
        set_data_root(cfg, data_root)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return add_checkpoint_match_hook(cfg)


def enable_amp(optim_wrapper: dict, dtype: Optional[str] = None) -> bool:
    """Turn an ``optim_wrapper`` config into mmengine's ``AmpOptimWrapper``, in place.

    An ``OptimWrapper`` becomes an ``AmpOptimWrapper``; ``dtype``
    (``'float16'`` / ``'bfloat16'``) replaces the config's (without either,
    autocast uses float16, mmengine's default). The loss scale is chosen only
    where the config sets none and this call changes the wrapper or its dtype:
    ``'dynamic'`` (mmseg's ``--amp``), or for bfloat16 ``dict(enabled=False)``,
    since bfloat16 has float32's exponent range (no gradient underflows to
    scale away) and a disabled scaler adds no unscale pass over the gradients.
    An ``AmpOptimWrapper`` without ``dtype`` is left as it is.

    Args:
        optim_wrapper (dict): ``cfg.optim_wrapper``, of type ``OptimWrapper``
            or ``AmpOptimWrapper``.
        dtype (str, optional): The autocast dtype.

    Returns:
        bool: Whether the config was an ``AmpOptimWrapper`` already.
    """
    kind = optim_wrapper.get('type', 'OptimWrapper')
    if kind not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise ValueError(f'mixed precision needs optim_wrapper.type OptimWrapper, got {kind}')
    if kind == 'AmpOptimWrapper' and dtype is None:
        return True
    optim_wrapper['type'] = 'AmpOptimWrapper'
    if dtype is not None:
        optim_wrapper['dtype'] = dtype
    if 'loss_scale' not in optim_wrapper:
        bfloat16 = str(optim_wrapper.get('dtype')) in ('bfloat16', 'torch.bfloat16')
        optim_wrapper['loss_scale'] = dict(enabled=False) if bfloat16 else 'dynamic'
    return kind == 'AmpOptimWrapper'
