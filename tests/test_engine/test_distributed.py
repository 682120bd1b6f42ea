# Copyright (c) mmsfc contributors. All rights reserved.
import os
import subprocess
import sys
from unittest.mock import patch

import pytest
import torch.distributed as torch_dist
from mmengine.config import Config

from conftest import REPO_ROOT
from mmsfc.engine import setup_cpu_distributed, teardown_distributed


def test_setup_is_a_noop_without_launcher_or_with_cuda():
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    setup_cpu_distributed(cfg, 'none')
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and 'model_wrapper_cfg' not in cfg
    with patch('torch.cuda.is_available', return_value=True):
        setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and 'model_wrapper_cfg' not in cfg


def test_setup_selects_gloo_and_cpu_wrapper(monkeypatch):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    calls = []
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)
    monkeypatch.setattr('torch.distributed.is_initialized', lambda: False)
    monkeypatch.setattr('torch.distributed.init_process_group',
                        lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '2')
    setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg == dict(type='mmseg.SFCDistributedDataParallel')
    assert calls == [dict(backend='gloo', rank=1, world_size=2)]


def test_teardown_waits_for_the_ranks_then_destroys_the_group(tmp_path, monkeypatch):
    teardown_distributed()  # no group: nothing to do
    torch_dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}',
                                  rank=0, world_size=1)
    calls = []
    monkeypatch.setattr(torch_dist, 'barrier', lambda: calls.append('barrier'))
    try:
        teardown_distributed()
    finally:
        left = torch_dist.is_initialized()
        if left:  # do not leak a group into other tests
            torch_dist.destroy_process_group()
    assert calls == ['barrier'] and not left


ROUNDS_SCRIPT = '''
import os, sys
import torch.distributed as dist
from mmengine.dist import all_gather_object
from mmsfc.engine import teardown_distributed
rank, rounds, root = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for i in range(rounds):
    dist.init_process_group('gloo', store=dist.FileStore(os.path.join(root, f'store{i}'), 2),
                            rank=rank, world_size=2)
    gathered = all_gather_object(dict(rank=rank, round=i, payload=list(range(64))))
    assert [g['rank'] for g in gathered] == [0, 1] and gathered[1 - rank]['round'] == i
    teardown_distributed()
    assert not dist.is_initialized()
with open(os.path.join(root, f'done{rank}'), 'w') as f:
    f.write(str(rounds))
'''


@pytest.mark.slow
def test_teardown_after_a_gather_never_deadlocks(tmp_path):
    """Two gloo processes, 100 rounds of init / ``all_gather_object`` /
    teardown. Destroying the group with the GIL held while a gloo thread frees
    the gathered tensors hung this test in 3 of 3 runs here."""
    script = tmp_path / 'rounds.py'
    script.write_text(ROUNDS_SCRIPT)
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), '100', str(tmp_path)],
                              cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
             for rank in range(2)]
    try:
        errors = [proc.communicate(timeout=120)[1] for proc in procs]
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        raise AssertionError('a rank hung in 100 rounds of init / gather / teardown') from None
    assert [proc.returncode for proc in procs] == [0, 0], errors
    assert [(tmp_path / f'done{rank}').read_text() for rank in range(2)] == ['100', '100']
