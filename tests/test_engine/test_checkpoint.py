# Copyright (c) mmsfc contributors. All rights reserved.
"""mmsfc.engine.checkpoint: the scoped weights_only=False loader and key matching."""
import functools
import logging
import pickle
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import load_from_local
from torch import nn

from conftest import REPO_ROOT
from mmsfc.engine import CheckpointMatchHook, count_matching_tensors, trusted_local_checkpoints


@pytest.mark.slow
def test_import_mmsfc_leaves_mmengine_loader_alone():
    code = ('import mmsfc\n'
            'from mmengine.runner import CheckpointLoader\n'
            'from mmengine.runner.checkpoint import load_from_local\n'
            "assert CheckpointLoader._get_checkpoint_loader('a.pth') is load_from_local\n")
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_trusted_loader_only_inside_the_block(tmp_path, monkeypatch):
    original = torch.load

    @functools.wraps(original)
    def load(*args, **kwargs):  # torch >= 2.6: weights_only=True by default
        kwargs.setdefault('weights_only', True)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', load)
    path = str(tmp_path / 'ckpt.pth')
    torch.save(dict(state_dict={}, meta=dict(stats=np.arange(3))), path)
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(path)
    with trusted_local_checkpoints():
        loaded = CheckpointLoader.load_checkpoint(path)
    assert loaded['meta']['stats'].tolist() == [0, 1, 2]
    assert CheckpointLoader._get_checkpoint_loader(path) is load_from_local
    with pytest.raises(RuntimeError), trusted_local_checkpoints():
        raise RuntimeError('restored on error too')
    assert CheckpointLoader._get_checkpoint_loader(path) is load_from_local


def test_count_matching_tensors_by_name_and_shape():
    model = dict(a=torch.zeros(2), b=torch.zeros(3, 3), c=torch.zeros(1))
    source = {'module.a': torch.ones(2), 'b': torch.ones(3, 4), 'd': torch.ones(1)}
    assert count_matching_tensors(model, source) == (1, 3)


def test_hook_warns_with_counts(caplog):
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))  # 7 tensors
    logger = logging.getLogger('test_checkpoint_match_hook')
    runner = SimpleNamespace(model=model, logger=logger)
    hook = CheckpointMatchHook()
    partial = {'state_dict': {'0.weight': torch.zeros(4, 3, 1, 1), 'other.bias': torch.zeros(4)}}
    with caplog.at_level(logging.INFO, logger=logger.name):
        hook.after_load_checkpoint(runner, partial)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and 'only 1 of 7 model tensors' in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=logger.name):
        hook.after_load_checkpoint(runner, {'state_dict': model.state_dict()})
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 'all 7 model tensors found' in caplog.text
