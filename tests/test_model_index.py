# Copyright (c) mmsfc contributors. All rights reserved.
"""model-index.yml and the metafiles it imports (mim's model index): every config named
exists, builds, and every user config of the three algorithms is named."""
import glob
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from conftest import REPO_ROOT

ALGORITHMS = ('sfc', 'irn', 'deeplabv2')


def load_yaml(path):
    with open(osp.join(REPO_ROOT, path)) as f:
        return yaml.safe_load(f)


def index_models():
    models = []
    for metafile in load_yaml('model-index.yml')['Import']:
        meta = load_yaml(metafile)
        collections = {c['Name'] for c in meta['Collections']}
        for model in meta['Models']:
            assert model['In Collection'] in collections, (metafile, model['Name'])
            models.append(model)
    return models


MODELS_IN_INDEX = index_models()


def test_index_imports_one_metafile_per_algorithm():
    assert load_yaml('model-index.yml')['Import'] == [
        f'configs/{name}/metafile.yaml' for name in ALGORITHMS]


def test_every_user_config_is_named_once_under_its_own_name():
    configs = [m['Config'] for m in MODELS_IN_INDEX]
    assert len(configs) == len(set(configs))
    on_disk = sorted(osp.relpath(p, REPO_ROOT) for name in ALGORITHMS
                     for p in glob.glob(osp.join(REPO_ROOT, 'configs', name, '*.py')))
    assert sorted(configs) == on_disk
    for model in MODELS_IN_INDEX:
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
        assert osp.isfile(osp.join(REPO_ROOT, model['Code'])), model['Code']


def test_no_weights_and_no_metrics_until_trained():
    """Until a model is trained here, Weights and logs stay empty, and no number
    (e.g. the paper's) appears as if it were this implementation's result."""
    for model in MODELS_IN_INDEX:
        if not model['Weights']:
            assert model['Training log'] == '' and model['Results']['Metrics'] == {}, \
                model['Name']
        else:
            assert model['Weights'].startswith('https://'), model['Name']


@pytest.mark.parametrize('config', [m['Config'] for m in MODELS_IN_INDEX])
def test_indexed_config_builds_its_model(config):
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))  # also imports custom_imports
    init_default_scope(cfg.default_scope)
    model_cfg = cfg.model.to_dict()
    model_cfg['init_cfg'] = None
    model_cfg['backbone']['init_cfg'] = None
    try:
        with torch.device('meta'):  # structure only: no memory, no initialisation
            model = MODELS.build(model_cfg)
    except RuntimeError as e:  # a backbone that reads a value while it is built
        assert 'meta' in str(e), e
        model = MODELS.build(model_cfg)
    assert sum(p.numel() for p in model.parameters()) > 1_000_000, config
