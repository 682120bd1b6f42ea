# Copyright (c) mmsfc contributors. All rights reserved.
"""Every config parses, carries custom_imports and builds its model offline; names say
what the configs run."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.utils import import_modules_from_strings
from mmseg.registry import MODELS

from conftest import REPO_ROOT

SFC_VOC = 'sfc_r50_1xb16-3966it_voc12aug-512x512'  # the authors' setting

CONFIGS = sorted(
    [path for path in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
     if '_base_' not in path] + glob.glob(osp.join(REPO_ROOT, 'tests', 'data', 'configs', '*.py')))
#: mmseg's scheme: {algorithm}_{backbone}_{gpus}xb{batch}-{schedule}_{dataset}-{crop}[_{variant}]
NAME = re.compile(r'(?P<algorithm>[a-z0-9]+)_(?P<backbone>[a-z0-9.-]+)_'
                  r'(?P<gpus>\d+)xb(?P<batch>\d+)-(?P<schedule>\d+)(?P<unit>k|it|ep)_'
                  r'(?P<dataset>[a-z0-9]+)-(?P<h>\d+)x(?P<w>\d+)(_[a-z0-9.-]+)*\.py')
NAMED_CONFIGS = [path for path in CONFIGS if osp.basename(osp.dirname(path)) != 'demo']


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
    for name in (f'{SFC_VOC}_base.py', f'{SFC_VOC}_ibr-only.py'):
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/sfc', name))
        assert cfg.model.test_cfg.inference_map == 'w', name
    for name in (f'{SFC_VOC}_no-loss-p.py', f'{SFC_VOC}_no-loss-w.py', f'{SFC_VOC}_no-ibr.py'):
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/sfc', name))
        assert cfg.model.test_cfg.inference_map == 'final', name


@pytest.mark.parametrize('path', NAMED_CONFIGS, ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_config_name_states_its_batch_schedule_and_crop(path):
    match = NAME.fullmatch(osp.basename(path))
    assert match, f'{osp.basename(path)} does not follow mmseg\'s naming scheme'
    cfg = Config.fromfile(path)
    folder = osp.basename(osp.dirname(path))
    if folder != 'configs':  # configs/<algorithm>/; the test-only ones sit in tests/data/configs
        assert match['algorithm'] == folder
    assert int(match['batch']) == cfg.train_dataloader.batch_size
    length = int(match['schedule'])
    if match['unit'] == 'ep':
        assert cfg.train_cfg.max_epochs == length
    else:
        assert cfg.train_cfg.max_iters == length * (1000 if match['unit'] == 'k' else 1)
    (crop, ) = [t.crop_size for t in cfg.train_dataloader.dataset.pipeline if 'Crop' in t.type]
    crop = tuple(crop) if isinstance(crop, (tuple, list)) else (crop, crop)
    assert (int(match['h']), int(match['w'])) == crop
