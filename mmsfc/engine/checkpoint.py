# Copyright (c) mmsfc contributors. All rights reserved.
"""Load mmengine checkpoints with torch >= 2.6.

torch 2.6 changed ``torch.load``'s default to ``weights_only=True``, while
mmengine 0.10.7 calls ``torch.load(filename, map_location=...)`` without the
argument, so ``--resume``, ``load_from`` and ``tools/test.py`` fail with
``UnpicklingError: Weights only load failed`` on checkpoints mmengine itself
wrote.

Allow-listing the checkpoint's types is not enough: besides numpy arrays and
``HistoryBuffer`` objects, ``HistoryBuffer.__getstate__`` pickles its
statistics methods, which protocol 2 stores as ``builtins.getattr(cls,
name)``, and allow-listing ``getattr`` would open the weights-only unpickler
to arbitrary attribute access. So mmsfc re-registers mmengine's loader for
local paths (the ``''`` prefix of ``CheckpointLoader``, a public extension
point) with one that passes ``weights_only=False``: exactly the behaviour of
mmengine with torch < 2.6, and of later mmengine releases. ``torch.load``
itself and every other caller of it are left untouched. Load only
checkpoints you trust, as with any pickle.
"""
import os.path as osp

import torch
from mmengine.runner import CheckpointLoader


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


def register_checkpoint_loader() -> None:
    """Make :func:`load_from_local_trusted` mmengine's loader for local paths."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_trusted, force=True)
