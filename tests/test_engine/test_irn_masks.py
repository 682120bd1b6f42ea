# Copyright (c) mmsfc contributors. All rights reserved.
"""Stage 3 through the pseudo-label writer: IRN masks from stored CAMs."""
import glob
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from conftest import REPO_ROOT, TOY_CONFIG
from mmsfc.engine import PseudoLabelGenerator
from mmsfc.engine.hooks import CAMToPseudoLabelHook
from mmsfc.postprocess import load_cams, load_label_png
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


def irn_model(seed=0):
    torch.manual_seed(seed)
    return MODELS.build(Config.fromfile(IRN_TOY_CONFIG).model)


def masks(out_dir):
    return {osp.basename(p)[:-4]: load_label_png(p) for p in glob.glob(f'{out_dir}/masks/*.png')}


@pytest.fixture
def stage2(toy_voc, tiny_model, tmp_path):
    out_dir = str(tmp_path / 'pseudo')
    PseudoLabelGenerator(out_dir, dataloader_cfg(toy_voc), evaluate=False).run(tiny_model)
    return out_dir


def test_masks_round_trip_and_a_killed_run_resumes_to_the_same_files(toy_voc, stage2):
    model = irn_model()
    metrics = PseudoLabelGenerator(stage2, dataloader_cfg(toy_voc),
                                   eval_ann_file='ImageSets/Segmentation/train.txt'
                                   ).refine(model)
    assert 0 <= metrics['mask/mIoU'] <= 100
    first = masks(stage2)
    assert len(first) == 24
    for img_id, mask in first.items():
        keys, cam_w, _ = load_cams(osp.join(stage2, 'cams', img_id + '.npz'))
        assert mask.shape == cam_w.shape[1:]
        assert set(np.unique(mask)) <= set(keys.tolist())

    # a killed run: some masks missing, one truncated, a temporary left behind
    paths = sorted(glob.glob(osp.join(stage2, 'masks', '*.png')))
    for path in paths[:10]:
        os.remove(path)
    with open(paths[10], 'wb') as f:
        f.write(b'\x89PNG')
    open(paths[0] + '.123.tmp.png', 'wb').close()
    before = {p: os.stat(p).st_mtime_ns for p in paths[11:]}
    PseudoLabelGenerator(stage2, dataloader_cfg(toy_voc), evaluate=False).refine(model)
    assert {p: os.stat(p).st_mtime_ns for p in paths[11:]} == before  # not rewritten
    again = masks(stage2)
    assert sorted(again) == sorted(first)
    for img_id in first:
        np.testing.assert_array_equal(again[img_id], first[img_id])
    assert not glob.glob(osp.join(stage2, 'masks', '*.tmp.*'))

    with pytest.raises(ValueError, match='another IRN model'):
        PseudoLabelGenerator(stage2, dataloader_cfg(toy_voc)).refine(irn_model(seed=1))
    with pytest.raises(ValueError, match='another IRN model'):
        PseudoLabelGenerator(stage2, dataloader_cfg(toy_voc), walk=dict(beta=8)).refine(model)


def test_masks_need_the_stored_cams(toy_voc, tmp_path):
    with pytest.raises(FileNotFoundError, match='CAMs of stage 2'):
        PseudoLabelGenerator(str(tmp_path / 'empty'), dataloader_cfg(toy_voc)).refine(irn_model())


@pytest.mark.slow
def test_hook_in_irn_mode_and_the_tool_write_the_same_masks(toy_voc, tiny_model, stage2,
                                                            tmp_path):
    model = irn_model()

    class FakeRunner:
        work_dir = str(tmp_path)
        logger = __import__('logging').getLogger('test')
        cfg = Config(dict(test_dataloader=None))

    FakeRunner.model = model
    CAMToPseudoLabelHook(out_dir=stage2, mode='irn', dataloader=dataloader_cfg(toy_voc),
                         evaluate=False).after_train(FakeRunner)
    from_hook = masks(stage2)
    assert len(from_hook) == 24

    cam_ckpt, irn_ckpt = str(tmp_path / 'cam.pth'), str(tmp_path / 'irn.pth')
    torch.save(dict(state_dict=tiny_model.state_dict()), cam_ckpt)
    torch.save(dict(state_dict=model.state_dict()), irn_ckpt)
    out_dir = str(tmp_path / 'tool')
    options = [f'test_dataloader.dataset.data_root={toy_voc}',
               f'custom_hooks.1.dataloader.dataset.data_root={toy_voc}']
    result = subprocess.run(
        [sys.executable, 'tools/make_pseudo_labels.py', TOY_CONFIG, cam_ckpt, '--out-dir',
         out_dir, '--irn', IRN_TOY_CONFIG, irn_ckpt, '--cfg-options', *options],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'mask/mIoU' in result.stdout + result.stderr
    from_tool = masks(out_dir)
    assert sorted(from_tool) == sorted(from_hook)
    for img_id in from_hook:  # CAMs of the same model: the same masks
        np.testing.assert_array_equal(from_tool[img_id], from_hook[img_id])
