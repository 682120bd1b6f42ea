# Copyright (c) mmsfc contributors. All rights reserved.
"""The tools' config helpers: one setting moves every dataset (``--data-root``), and
``--amp`` / ``--amp-dtype`` choose the AMP wrapper."""
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO_ROOT
from mmsfc.engine import enable_amp, load_tool_config, set_data_root

VOC_CONFIG = osp.join(REPO_ROOT, 'configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py')


def data_roots(node, prefix=''):
    """Every (dotted key, value) of a ``data_root`` below the top level."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'data_root' and prefix:
                found.append((f'{prefix}.{key}', value))
            else:
                found += data_roots(value, f'{prefix}.{key}' if prefix else key)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found += data_roots(value, f'{prefix}.{i}')
    return found


def test_set_data_root_reaches_every_loader_hook_and_wrapper():
    cfg = Config.fromfile(VOC_CONFIG)
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=2,
                                        dataset=cfg.train_dataloader.dataset)
    assert {root for _, root in data_roots(cfg.to_dict())} == {'data/VOCdevkit/VOC2012'}
    changed = set_data_root(cfg, '/elsewhere/VOC2012')
    roots = dict(data_roots(cfg.to_dict()))
    assert set(roots.values()) == {'/elsewhere/VOC2012'}
    assert {'train_dataloader.dataset.dataset.data_root', 'val_dataloader.dataset.data_root',
            'test_dataloader.dataset.data_root',
            'custom_hooks.1.dataloader.dataset.data_root'} <= set(roots) == set(changed[1:])
    assert cfg.data_root == '/elsewhere/VOC2012'
    # relative paths stay relative to the root
    assert cfg.test_dataloader.dataset.ann_file == 'ImageSets/Segmentation/train.txt'


@pytest.mark.parametrize('how', ['argument', 'cfg_option'])
def test_load_tool_config_data_root(how, tmp_path):
    kwargs = dict(data_root='/new') if how == 'argument' else {}
    options = {'data_root': '/new'} if how == 'cfg_option' else {}
    options['train_dataloader.batch_size'] = 3
    cfg = load_tool_config(VOC_CONFIG, options, work_dir=str(tmp_path), **kwargs)
    assert {root for _, root in data_roots(cfg.to_dict())} == {'/new'}
    assert cfg.train_dataloader.batch_size == 3
    with pytest.raises(SystemExit, match='disagree'):
        load_tool_config(VOC_CONFIG, {'data_root': '/a'}, data_root='/b')


def test_enable_amp_refuses_other_wrappers_and_keeps_the_rest():
    wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
                   clip_grad=dict(max_norm=1))
    assert not enable_amp(wrapper, 'bfloat16')
    assert wrapper == dict(type='AmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1),
                           clip_grad=dict(max_norm=1), dtype='bfloat16',
                           loss_scale=dict(enabled=False))
    # already AMP: reported; left alone without a dtype, else the scale follows the dtype
    # unless the config sets one
    wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
    assert enable_amp(wrapper) and wrapper == dict(type='AmpOptimWrapper', dtype='bfloat16')
    for dtype, scale in (('bfloat16', dict(enabled=False)), ('float16', 'dynamic')):
        wrapper = dict(type='AmpOptimWrapper')
        assert enable_amp(wrapper, dtype) and wrapper['loss_scale'] == scale
    wrapper = dict(type='AmpOptimWrapper', loss_scale=512.0)
    assert enable_amp(wrapper, 'bfloat16') and wrapper['loss_scale'] == 512.0
    with pytest.raises(ValueError, match='needs optim_wrapper.type OptimWrapper, got '
                       'DeepSpeedOptimWrapper'):
        enable_amp(dict(type='DeepSpeedOptimWrapper'))
