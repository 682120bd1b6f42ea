# Copyright (c) mmsfc contributors. All rights reserved.
import importlib.util
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS

from conftest import REPO_ROOT, TOY_CONFIG


def load_converter():
    path = osp.join(REPO_ROOT, 'tools/model_converters/sfc_to_mmsfc.py')
    spec = importlib.util.spec_from_file_location('sfc_to_mmsfc', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_toy_model():
    cfg = Config.fromfile(TOY_CONFIG)
    return MODELS.build(cfg.model)


def authors_checkpoint(model):
    """The model's weights under the authors' names, with their aliases."""
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith('backbone.'):
            state['resnet50.' + key[len('backbone.'):]] = value
            state['backbone.0.' + key[len('backbone.'):]] = value  # alias
        elif key.startswith('prototype_head.side_convs.'):
            index = int(key.split('.')[2])
            state[f'side{index + 1}.weight'] = value
        elif key == 'pcm.proj.weight':
            state['f9.weight'] = value
        else:
            state[key] = value
    state['stage1.0.weight'] = state['resnet50.conv1.weight']
    state['newly_added.0.weight'] = state['classifier.weight']
    return {'module.' + key: value for key, value in state.items()}  # DataParallel


def test_converted_checkpoint_loads_strictly(tmp_path):
    torch.manual_seed(0)
    source_model = build_toy_model()
    src, dst = tmp_path / 'final.pth', tmp_path / 'converted.pth'
    torch.save(authors_checkpoint(source_model), src)
    assert load_converter().main([str(src), str(dst), '--config', TOY_CONFIG]) == 0
    target = build_toy_model()
    load_checkpoint(target, str(dst), strict=True)
    for key, value in source_model.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, msg=key)


def test_unknown_and_missing_keys_are_named(tmp_path, capsys):
    state = authors_checkpoint(build_toy_model())
    state['module.extra_head.weight'] = torch.zeros(1)
    del state['module.side3.weight']
    src, dst = tmp_path / 'bad.pth', tmp_path / 'out.pth'
    torch.save({'state_dict': state}, src)
    assert load_converter().main([str(src), str(dst), '--config', TOY_CONFIG]) == 1
    err = capsys.readouterr().err
    assert 'extra_head.weight' in err and 'prototype_head.side_convs.2.weight' in err
    assert not dst.exists()
