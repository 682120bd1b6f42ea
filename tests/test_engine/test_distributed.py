# Copyright (c) mmsfc contributors. All rights reserved.
from unittest.mock import patch

import torch.distributed as torch_dist
from mmengine.config import Config

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
