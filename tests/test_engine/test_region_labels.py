# Copyright (c) mmsfc contributors. All rights reserved.
"""Region refinement through the pseudo-label writer: labels_<type>/ and masks_<type>/."""
import glob
import json
import os
import os.path as osp
from collections import Counter
from unittest.mock import patch

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

import mmsfc.engine.region_labels as rl_module
import mmsfc.engine.stage_files as stage_files
from conftest import REPO_ROOT, TOY_CONFIG, load_tool
from mmsfc.engine import PseudoLabelGenerator
from mmsfc.engine.hooks import CAMToPseudoLabelHook
from mmsfc.postprocess import (
    RegionRule,
    build_region_source,
    load_label_png,
    refine_with_regions,
    save_region_map,
)
from mmsfc.testing import TOY_CLASSES

IRN_TOY_CONFIG = osp.join(REPO_ROOT, 'tests/data/configs/irn_r18_1xb4-3ep_toyvoc-64x64.py')
PIPELINE = [dict(type='LoadImageFromFile'),
            dict(type='PackSegInputs', meta_keys=('img_path', 'ori_shape', 'img_shape',
                                                  'cls_label'))]


def dataloader_cfg(root):
    return dict(num_workers=0, dataset=dict(
        type='SFCVOCDataset', data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
        metainfo=dict(classes=TOY_CLASSES), cls_label_file='cls_labels.npy',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        pipeline=PIPELINE))


def pngs(directory):
    return {osp.basename(p)[:-4]: load_label_png(p) for p in glob.glob(f'{directory}/*.png')}


@pytest.fixture(scope='module')
def gt_regions(toy_voc, tmp_path_factory):
    """A region folder: each image's ground-truth segments as a region map."""
    root = str(tmp_path_factory.mktemp('regions'))
    for path in glob.glob(osp.join(toy_voc, 'SegmentationClassAug', '*.png')):
        gt = load_label_png(path).astype(np.int64)
        save_region_map(osp.join(root, osp.basename(path)), np.where(gt == 255, 9, gt + 1))
    return root


@pytest.fixture
def counting_region_writes(monkeypatch):
    counts = Counter()
    original = rl_module.save_label_png

    def wrapped(path, *args, **kwargs):
        counts[osp.basename(path)] += 1
        return original(path, *args, **kwargs)

    monkeypatch.setattr(rl_module, 'save_label_png', wrapped)
    return counts


def test_labels_refined_once_per_image_over_two_ranks_scored_and_resumed(
        toy_voc, tiny_model, tmp_path, gt_regions, counting_region_writes):
    out_dir = str(tmp_path / 'out')
    regions = dict(type='folder', root=gt_regions)
    rule = dict(majority=0.4)
    for rank in range(2):
        with patch.object(stage_files, 'get_dist_info', return_value=(rank, 2)), \
                patch('mmengine.dataset.sampler.get_dist_info', return_value=(rank, 2)):
            PseudoLabelGenerator(out_dir, dataloader_cfg(toy_voc), evaluate=False,
                                 regions=regions, region_rule=rule).run(tiny_model)
    ids = [f'2000_{i:06d}' for i in range(24)]
    assert counting_region_writes == Counter({f'{i}.png': 1 for i in ids})
    labels, refined = pngs(osp.join(out_dir, 'labels')), pngs(osp.join(out_dir, 'labels_folder'))
    assert sorted(refined) == ids
    assert any(not np.array_equal(refined[i], labels[i]) for i in ids)  # the regions acted
    source = build_region_source(regions)
    for img_id in ids:  # the files are the rule applied to the stored labels
        image = mmcv.imread(osp.join(toy_voc, 'JPEGImages', img_id + '.jpg'),
                            channel_order='rgb')
        expected = refine_with_regions(labels[img_id], source(image, img_id), RegionRule(**rule))
        np.testing.assert_array_equal(refined[img_id], expected)
    with open(osp.join(out_dir, 'labels_folder', 'manifest.json')) as f:
        manifest = json.load(f)
    assert manifest['regions']['type'] == 'folder' and manifest['rule']['majority'] == 0.4
    assert 'weights_sha1' in manifest['labels']

    counting_region_writes.clear()
    mtimes = {p: os.stat(p).st_mtime_ns for p in glob.glob(f'{out_dir}/labels_folder/*')}
    metrics = PseudoLabelGenerator(out_dir, dataloader_cfg(toy_voc), regions=regions,
                                   region_rule=rule).run(tiny_model)
    assert not counting_region_writes
    assert mtimes == {p: os.stat(p).st_mtime_ns for p in glob.glob(f'{out_dir}/labels_folder/*')}
    assert 0 <= metrics['pseudo_label_folder/mIoU'] <= 100
    assert 0 <= metrics['pseudo_label/mIoU'] <= 100
    with pytest.raises(ValueError, match='labels of other regions'):
        PseudoLabelGenerator(out_dir, dataloader_cfg(toy_voc), evaluate=False, regions=regions,
                             region_rule=dict(majority=0.6)).run(tiny_model)


def test_superpixels_in_worker_processes_and_a_bad_source_fails_first(toy_voc, tiny_model,
                                                                      tmp_path):
    out_dir = str(tmp_path / 'out')
    regions = dict(type='slic', n_segments=12)
    PseudoLabelGenerator(out_dir, dataloader_cfg(toy_voc), evaluate=False, nproc=2,
                         regions=regions).run(tiny_model)
    labels, refined = pngs(osp.join(out_dir, 'labels')), pngs(osp.join(out_dir, 'labels_slic'))
    assert sorted(refined) == sorted(labels) and len(refined) == 24
    assert any(not np.array_equal(refined[i], labels[i]) for i in labels)
    source = build_region_source(regions)
    for img_id in sorted(labels)[:4]:
        image = mmcv.imread(osp.join(toy_voc, 'JPEGImages', img_id + '.jpg'),
                            channel_order='rgb')
        np.testing.assert_array_equal(
            refined[img_id], refine_with_regions(labels[img_id], source(image, img_id)))
    with pytest.raises(FileNotFoundError, match='region folder not found'):
        PseudoLabelGenerator(out_dir, dataloader_cfg(toy_voc),
                             regions=dict(type='folder', root=str(tmp_path / 'none')))


def test_irn_masks_refined_through_the_hook(toy_voc, tiny_model, tmp_path, gt_regions):
    out_dir = str(tmp_path / 'pseudo')
    PseudoLabelGenerator(out_dir, dataloader_cfg(toy_voc), evaluate=False).run(tiny_model)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(IRN_TOY_CONFIG).model)

    class FakeRunner:
        work_dir = str(tmp_path)
        logger = __import__('logging').getLogger('test')
        cfg = Config(dict(test_dataloader=None))

    FakeRunner.model = model
    CAMToPseudoLabelHook(out_dir=out_dir, mode='irn', dataloader=dataloader_cfg(toy_voc),
                         regions=dict(type='folder', root=gt_regions)).after_train(FakeRunner)
    masks, refined = pngs(osp.join(out_dir, 'masks')), pngs(osp.join(out_dir, 'masks_folder'))
    assert sorted(refined) == sorted(masks) and len(masks) == 24
    source = build_region_source(dict(type='folder', root=gt_regions))
    for img_id in sorted(masks)[:4]:
        image = np.zeros(masks[img_id].shape + (3,), np.uint8)
        np.testing.assert_array_equal(
            refined[img_id], refine_with_regions(masks[img_id], source(image, img_id)))
    assert not osp.exists(osp.join(out_dir, 'labels_folder'))  # mode 'irn' refines the masks


def test_tool_options_become_generator_settings(tmp_path):
    tool = load_tool('make_pseudo_labels')
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.work_dir = str(tmp_path)
    args = tool.parse_args([TOY_CONFIG, 'ckpt.pth', '--refine-regions', 'sam',
                            '--sam-checkpoint', 'sam.pth', '--sam-model-type', 'vit_b',
                            '--region-options', 'points_per_side=16', '--region-coverage',
                            '0.9'])
    settings = tool.generator_settings(cfg, args)
    assert settings['regions'] == dict(type='sam', points_per_side=16, checkpoint='sam.pth',
                                       model_type='vit_b')
    assert settings['region_rule'] == dict(coverage=0.9)
    args = tool.parse_args([TOY_CONFIG, 'ckpt.pth', '--refine-regions', 'folder',
                            '--region-dir', 'masks'])
    assert tool.generator_settings(cfg, args)['regions'] == dict(type='folder', root='masks')
    assert 'regions' not in tool.generator_settings(cfg, tool.parse_args([TOY_CONFIG, 'c']))
    for wrong in (['--refine-regions', 'slic', '--region-dir', 'x'],
                  ['--refine-regions', 'slic', '--sam-checkpoint', 'x']):
        with pytest.raises(SystemExit, match='needs --refine-regions'):
            tool.generator_settings(cfg, tool.parse_args([TOY_CONFIG, 'c', *wrong]))
