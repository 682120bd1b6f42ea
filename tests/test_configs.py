# Copyright (c) mmsfc contributors. All rights reserved.
"""Every config parses, carries custom_imports and builds its model offline."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.utils import import_modules_from_strings
from mmseg.registry import MODELS

from conftest import REPO_ROOT

CONFIGS = sorted(
    path for path in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in path)


def drop_pretrained(cfg):
    """Remove every weight download from a model config, recursively."""
    if isinstance(cfg, dict):
        if cfg.get('type') == 'Pretrained':
            return None
        return {key: drop_pretrained(value) for key, value in cfg.items() if key != 'pretrained'}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(drop_pretrained(value) for value in cfg)
    return cfg


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    # mmsfc, plus mmpretrain's registry for configs with mmpretrain backbones
    assert cfg.custom_imports.allow_failed_imports is False
    assert cfg.custom_imports.imports in (['mmsfc'], ['mmsfc', 'mmpretrain.models'])
    import_modules_from_strings(**cfg.custom_imports)
    assert cfg.default_scope == 'mmseg'
    model = MODELS.build(drop_pretrained(cfg.model.to_dict()))
    assert sum(p.numel() for p in model.parameters()) > 0
    if cfg.model.type == 'SFCClassifier':
        # the MSDW loss cannot run without the training set's class counts
        hooks = [hook.type for hook in cfg.get('custom_hooks', [])]
        assert 'DistributionCoefficientHook' in hooks, path
        # the batch is a total over processes only through IBRBatchSampler
        assert cfg.train_dataloader.batch_sampler.type == 'IBRBatchSampler', path


def test_ablations_report_what_the_paper_reports():
    """Table 4: Base and I report M_W (the metric's mIoU follows inference_map)."""
    for name in ('sfc_r50_voc_base.py', 'sfc_r50_voc_ibr-only.py'):
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/sfc', name))
        assert cfg.model.test_cfg.inference_map == 'w', name
    for name in ('sfc_r50_voc_no-loss-p.py', 'sfc_r50_voc_no-loss-w.py', 'sfc_r50_voc_no-ibr.py'):
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/sfc', name))
        assert cfg.model.test_cfg.inference_map == 'final', name
