# Copyright (c) mmsfc contributors. All rights reserved.
from unittest.mock import patch

from mmengine.config import Config

from mmsfc.engine import setup_cpu_distributed


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
