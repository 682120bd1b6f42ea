# Copyright (c) mmsfc contributors. All rights reserved.
"""Checkpoint loading for the tools: torch >= 2.6 and loads that miss keys.

**weights_only.** torch 2.6 changed ``torch.load``'s default to
``weights_only=True``, while mmengine 0.10.7 calls ``torch.load(filename,
map_location=...)`` without the argument, so ``--resume``, ``load_from`` and
``tools/test.py`` fail with ``UnpicklingError: Weights only load failed`` on
checkpoints mmengine itself wrote. Allow-listing the checkpoint's types is not
enough: besides numpy arrays and ``HistoryBuffer`` objects,
``HistoryBuffer.__getstate__`` pickles its statistics methods, which protocol 2
stores as ``builtins.getattr(cls, name)``, and allow-listing ``getattr`` would
open the weights-only unpickler to arbitrary attribute access.

So the tools (``tools/train.py``, ``tools/test.py``,
``tools/make_pseudo_labels.py``) run inside :func:`trusted_local_checkpoints`,
which registers, for local paths only (the ``''`` prefix of mmengine's
``CheckpointLoader``, a public extension point), a loader that passes
``weights_only=False`` (mmengine's behaviour with torch < 2.6), and restores the
previous loader on exit. ``import mmsfc`` changes nothing: ``torch.load`` and
every other caller of mmengine's loader keep their defaults. Load only
checkpoints you trust, as with any pickle.

**Key matching.** mmengine loads ``load_from`` / ``--resume`` / test
checkpoints non-strictly, so a checkpoint with other key names loads nothing
and only a list of missing keys hints at it. :class:`CheckpointMatchHook`
(added by the tools, see :func:`add_checkpoint_match_hook`) counts the model
tensors the checkpoint provides and warns loudly when that is not all of them.
"""
import contextlib
import os.path as osp
from typing import Iterator, Mapping, Tuple

import torch
from mmengine.config import Config
from mmengine.runner import CheckpointLoader

#: Source prefixes mmengine strips when loading (its default ``revise_keys``).
_STRIPPED_PREFIX = 'module.'


def load_from_local_trusted(filename: str, map_location=None) -> dict:
    """Load a local checkpoint file with ``weights_only=False``.

    Args:
        filename (str): Path of the checkpoint (``~`` is expanded).
        map_location: Same as :func:`torch.load`.

    Returns:
        dict: The checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


@contextlib.contextmanager
def trusted_local_checkpoints() -> Iterator[None]:
    """Within the block, mmengine loads local files with ``weights_only=False``.

    The loader registered before (mmengine's ``load_from_local`` by default)
    is registered again on exit, also after an exception.
    """
    previous = CheckpointLoader._get_checkpoint_loader('local_file')
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_trusted, force=True)
    try:
        yield
    finally:
        CheckpointLoader.register_scheme(prefixes='', loader=previous, force=True)


def count_matching_tensors(model_state: Mapping[str, torch.Tensor],
                           checkpoint_state: Mapping[str, torch.Tensor]) -> Tuple[int, int]:
    """How many tensors of ``model_state`` the checkpoint provides.

    A model tensor matches when the checkpoint has its key (after stripping a
    leading ``module.``, as mmengine does) with the same shape.

    Returns:
        tuple[int, int]: ``(matched, total)``, ``total = len(model_state)``.
    """
    source = {(k[len(_STRIPPED_PREFIX):] if k.startswith(_STRIPPED_PREFIX) else k): v
              for k, v in checkpoint_state.items()}
    matched = sum(1 for key, value in model_state.items()
                  if key in source and hasattr(source[key], 'shape')
                  and tuple(source[key].shape) == tuple(value.shape))
    return matched, len(model_state)


def checkpoint_match_message(matched: int, total: int) -> str:
    """The warning for a load that left ``total - matched`` tensors unloaded."""
    return (f'CHECKPOINT MISMATCH: only {matched} of {total} model tensors were found in the '
            f'checkpoint (by name and shape); the other {total - matched} keep their initial '
            'values. Convert the checkpoint (e.g. tools/model_converters/sfc_to_mmsfc.py for '
            "the authors' weights) or check that it belongs to this config.")


def add_checkpoint_match_hook(cfg: Config) -> Config:
    """Append a :class:`CheckpointMatchHook` to ``cfg.custom_hooks`` (once)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(hook.get('type') == 'CheckpointMatchHook' for hook in hooks):
        hooks.append(dict(type='CheckpointMatchHook'))
    cfg.custom_hooks = hooks
    return cfg
