# Copyright (c) mmsfc contributors. All rights reserved.
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from collections import Counter
from types import SimpleNamespace
from unittest.mock import patch

import numpy as np
import pytest
import torch
from PIL import Image

import mmsfc.engine.pseudo_labels as pl_module
import mmsfc.engine.stage_files as stage_files
from conftest import REPO_ROOT, TOY_CONFIG
from mmsfc.engine import PseudoLabelGenerator
from mmsfc.engine.stage_files import eval_indices, same_size_batches
from mmsfc.postprocess import load_cams, load_label_png
from mmsfc.testing import TOY_CLASSES, generate_toy_voc

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackSegInputs', meta_keys=('img_path', 'ori_shape', 'img_shape',
                                                  'cls_label'))]


def dataloader_cfg(root, ann_file='ImageSets/Segmentation/train_aug.txt'):
    return dict(num_workers=0, dataset=dict(
        type='SFCVOCDataset', data_root=root, ann_file=ann_file,
        metainfo=dict(classes=TOY_CLASSES), cls_label_file='cls_labels.npy',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        pipeline=PIPELINE))


def outputs(out_dir):
    cams = {osp.basename(p)[:-4]: load_cams(p) for p in glob.glob(f'{out_dir}/cams/*.npz')}
    labels = {osp.basename(p)[:-4]: load_label_png(p)
              for p in glob.glob(f'{out_dir}/labels/*.png')}
    return cams, labels


@pytest.fixture
def counting_writes(monkeypatch):
    counts = Counter()
    for name in ('save_cams', 'save_label_png'):
        original = getattr(pl_module, name)

        def wrapped(path, *args, _original=original, **kwargs):
            counts[osp.basename(path)] += 1
            return _original(path, *args, **kwargs)

        monkeypatch.setattr(pl_module, name, wrapped)
    return counts


def test_two_ranks_write_each_file_once_and_rerun_skips(toy_voc, tiny_model, tmp_path,
                                                        counting_writes):
    out_dir = str(tmp_path / 'out')
    for rank in range(2):
        with patch.object(stage_files, 'get_dist_info', return_value=(rank, 2)), \
                patch('mmengine.dataset.sampler.get_dist_info', return_value=(rank, 2)):
            PseudoLabelGenerator(out_dir, dataloader_cfg(toy_voc), evaluate=False).run(tiny_model)
    ids = [f'2000_{i:06d}' for i in range(24)]
    assert counting_writes == Counter({f'{i}.{ext}': 1 for i in ids for ext in ('npz', 'png')})
    cams, labels = outputs(out_dir)
    assert sorted(cams) == sorted(labels) == ids
    for img_id, (keys, cam_w, cam_p) in cams.items():
        label = np.load(osp.join(toy_voc, 'cls_labels.npy'), allow_pickle=True).item()[img_id]
        assert keys.tolist() == [0] + (np.flatnonzero(label) + 1).tolist()
        assert cam_w.shape == cam_p.shape and cam_w.max() <= 1.0
        assert set(np.unique(labels[img_id])) <= set(keys.tolist()) | {255}

    counting_writes.clear()
    mtimes = {p: os.stat(p).st_mtime_ns for p in glob.glob(f'{out_dir}/*/*')}
    metrics = PseudoLabelGenerator(out_dir, dataloader_cfg(toy_voc)).run(tiny_model)
    assert not counting_writes  # everything existed and was valid
    assert mtimes == {p: os.stat(p).st_mtime_ns for p in glob.glob(f'{out_dir}/*/*')}
    for key in ('cam/mIoU_final', 'cam/mIoU_w', 'cam/mIoU_p', 'pseudo_label/mIoU'):
        assert 0 <= metrics[key] <= 100


def test_invalid_output_is_redone_and_streaming_matches(toy_voc, tiny_model, tmp_path,
                                                        counting_writes):
    stored, show_dir = str(tmp_path / 'stored'), str(tmp_path / 'show')
    PseudoLabelGenerator(stored, dataloader_cfg(toy_voc), evaluate=False, show_dir=show_dir,
                         num_show=3).run(tiny_model)
    shown = sorted(os.listdir(show_dir))
    assert [n for n in shown if n.endswith('.png')] == [
        f'2000_00000{i}_{kind}.png' for i in range(3) for kind in ('cam', 'label')]
    for name in ('2000_000000_cam.png', '2000_000000_label.png'):
        image = np.asarray(Image.open(osp.join(show_dir, name)))
        source = Image.open(osp.join(toy_voc, 'JPEGImages', '2000_000000.jpg'))
        assert image.shape[:2] == source.size[::-1] and image.std() > 0
    with open(osp.join(stored, 'cams', '2000_000003.npz'), 'wb') as f:
        f.write(b'truncated')
    open(osp.join(stored, 'labels', '2000_000003.png.123.tmp.png'), 'w').close()
    counting_writes.clear()
    PseudoLabelGenerator(stored, dataloader_cfg(toy_voc), evaluate=False).run(tiny_model)
    assert counting_writes == Counter({'2000_000003.npz': 1})
    assert not glob.glob(osp.join(stored, '*', '*.tmp.*'))

    streamed = str(tmp_path / 'streamed')
    PseudoLabelGenerator(streamed, dataloader_cfg(toy_voc), store_cams=False,
                         nproc=2).run(tiny_model)
    assert not osp.exists(osp.join(streamed, 'cams'))
    # the CRF inputs themselves are identical (PNGs alone could hide a difference):
    # run the streamed path through a synchronous pool that records them
    crf_inputs = {}

    class RecordingPool:
        def __init__(self, nproc):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def apply_async(self, func, args):
            img_path, _, keys, cam_w, cam_p = args[:5]
            crf_inputs[osp.basename(img_path)[:-4]] = (keys, cam_w, cam_p)
            return SimpleNamespace(get=lambda: None)

    with patch.object(pl_module, 'Pool', RecordingPool):
        PseudoLabelGenerator(str(tmp_path / 'recorded'), dataloader_cfg(toy_voc),
                             store_cams=False, evaluate=False).run(tiny_model)
    stored_cams = outputs(stored)[0]
    assert sorted(crf_inputs) == sorted(stored_cams)
    for img_id, arrays in crf_inputs.items():
        for a, b in zip(arrays, stored_cams[img_id], strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b), img_id
    names = sorted(os.listdir(osp.join(stored, 'labels')))
    assert names == sorted(os.listdir(osp.join(streamed, 'labels'))) and len(names) == 24
    for name in names:  # the streamed CRF sees the stored (float16) precision too
        with open(osp.join(stored, 'labels', name), 'rb') as a, \
                open(osp.join(streamed, 'labels', name), 'rb') as b:
            assert a.read() == b.read(), name


def run_tool(config, ckpt, out_dir, root):
    return subprocess.Popen(
        [sys.executable, 'tools/make_pseudo_labels.py', config, ckpt, '--out-dir', out_dir,
         '--no-eval', '--data-root', root, '--work-dir', out_dir + '_work'],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1'))


@pytest.mark.slow
def test_killed_run_restarted_gives_the_same_files(tmp_path, tiny_model):
    root = str(tmp_path / 'voc')
    generate_toy_voc(root, dict(train_aug=30, train=4, val=0), size_range=(120, 160), seed=1)
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=tiny_model.state_dict()), ckpt)

    straight = str(tmp_path / 'straight')
    assert run_tool(TOY_CONFIG, ckpt, straight, root).wait(timeout=300) == 0

    killed = str(tmp_path / 'killed')
    proc = run_tool(TOY_CONFIG, ckpt, killed, root)
    deadline = time.time() + 120
    while not glob.glob(osp.join(killed, 'cams', '*.npz')) and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(glob.glob(osp.join(killed, 'cams', '*.npz'))) < 30
    assert run_tool(TOY_CONFIG, ckpt, killed, root).wait(timeout=300) == 0

    straight_cams, straight_labels = outputs(straight)
    killed_cams, killed_labels = outputs(killed)
    assert sorted(killed_cams) == sorted(straight_cams) and len(straight_cams) == 30
    for img_id, arrays in straight_cams.items():
        for a, b in zip(arrays, killed_cams[img_id]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(straight_labels[img_id], killed_labels[img_id])
    assert not glob.glob(osp.join(killed, '*', '*.tmp.*'))


def test_same_size_batches_give_the_files_of_batch_one(tiny_model, tmp_path):
    root = str(tmp_path / 'voc')
    generate_toy_voc(root, dict(train_aug=12, train=0, val=0), size_range=(60, 61), seed=2)
    one, four = str(tmp_path / 'one'), str(tmp_path / 'four')
    PseudoLabelGenerator(one, dataloader_cfg(root), evaluate=False).run(tiny_model)
    generator = PseudoLabelGenerator(four, dataloader_cfg(root), evaluate=False, batch_size=4)
    batches = same_size_batches(generator._build_dataset(), list(range(12)), 4, 'color')
    assert sorted(i for batch in batches for i in batch) == list(range(12))
    assert max(len(batch) for batch in batches) > 1
    generator.run(tiny_model)
    cams_one, labels_one = outputs(one)
    cams_four, labels_four = outputs(four)
    assert sorted(cams_one) == sorted(cams_four)
    for img_id, arrays in cams_one.items():
        for a, b in zip(arrays, cams_four[img_id]):
            np.testing.assert_allclose(a, b, atol=2e-3)
        assert (labels_one[img_id] != labels_four[img_id]).mean() < 0.01


def test_outputs_of_another_model_are_refused(toy_voc, tiny_model, tmp_path):
    out_dir = str(tmp_path / 'out')
    cfg = dataloader_cfg(toy_voc, ann_file='ImageSets/Segmentation/train.txt')
    PseudoLabelGenerator(out_dir, cfg, evaluate=False).run(tiny_model)
    before = {p: os.stat(p).st_mtime_ns for p in glob.glob(f'{out_dir}/*/*')}
    with torch.no_grad():
        tiny_model.classifier.weight.add_(1)
    with pytest.raises(ValueError, match='weights_sha1'):
        PseudoLabelGenerator(out_dir, cfg, evaluate=False).run(tiny_model)
    with pytest.raises(ValueError, match='crf'):
        with torch.no_grad():
            tiny_model.classifier.weight.sub_(1)
        PseudoLabelGenerator(out_dir, cfg, evaluate=False, crf_alpha=0.3).run(tiny_model)
    assert before == {p: os.stat(p).st_mtime_ns for p in glob.glob(f'{out_dir}/*/*')}


def test_streamed_rerun_and_scoring_only_images_with_masks(toy_voc, tiny_model, tmp_path):
    root = str(tmp_path / 'voc')
    import shutil
    shutil.copytree(toy_voc, root)
    for i in range(4):  # train has 8 images; 4 lose their official mask
        os.remove(osp.join(root, 'SegmentationClass', f'2000_{i:06d}.png'))
    cfg = dataloader_cfg(root)
    cfg['dataset']['data_prefix']['seg_map_path'] = 'SegmentationClass'
    cfg['dataset']['pipeline'] = [PIPELINE[0], PIPELINE[2]]  # no ground truth needed to infer
    generator = PseudoLabelGenerator(str(tmp_path / 'out'), cfg, store_cams=False,
                                     eval_ann_file='ImageSets/Segmentation/train.txt')
    dataset = generator._build_dataset()
    ids = [f'2000_{i:06d}' for i in range(24)]
    assert eval_indices(dataset, ids, generator.eval_ann_file) == [4, 5, 6, 7]
    first = generator.run(tiny_model)
    assert 'cam/mIoU_final' in first and 'pseudo_label/mIoU' in first
    second = generator.run(tiny_model)  # nothing left to infer: no streamed CAM score
    assert 'cam/mIoU_final' not in second
    assert second['pseudo_label/mIoU'] == first['pseudo_label/mIoU']


def test_truncated_jpeg_named_when_batching(tiny_model, tmp_path):
    root = str(tmp_path / 'voc')
    generate_toy_voc(root, dict(train_aug=4, train=0, val=0), seed=3)
    path = osp.join(root, 'JPEGImages', '2000_000001.jpg')
    with open(path, 'rb') as f:
        head = f.read(100)
    with open(path, 'wb') as f:
        f.write(head)
    cfg = dataloader_cfg(root)
    cfg['dataset']['check_files'] = False  # else the dataset itself refuses it
    with pytest.raises(ValueError, match=f'cannot read image {path}: Truncated File Read'):
        PseudoLabelGenerator(str(tmp_path / 'out'), cfg, evaluate=False,
                             batch_size=2).run(tiny_model)


def test_exif_rotated_image_is_read_in_the_frame_of_its_mask(tiny_model, tmp_path):
    """COCO masks are drawn in the stored pixel frame: images are read ignoring EXIF."""
    from mmengine.config import Config
    from mmseg.registry import DATASETS

    from mmsfc.engine import set_data_root
    root = str(tmp_path / 'voc')
    generate_toy_voc(root, dict(train_aug=6, train=6, val=0), size_range=(50, 90), seed=4)
    img_id = next(f'2000_{i:06d}' for i in range(6)
                  if len(set(Image.open(f'{root}/JPEGImages/2000_{i:06d}.jpg').size)) == 2)
    path = osp.join(root, 'JPEGImages', img_id + '.jpg')
    image = Image.open(path)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    image.save(path, exif=exif.tobytes(), quality=95)
    mask_shape = np.asarray(Image.open(f'{root}/SegmentationClass/{img_id}.png')).shape

    cfg = Config.fromfile(TOY_CONFIG)
    set_data_root(cfg, root)
    dataset = DATASETS.build(cfg.val_dataloader.dataset)  # the CAM evaluation pipeline
    sample = dataset[int(img_id[-1])]
    assert sample['data_samples'].img_path == path
    assert tuple(sample['inputs'].shape[-2:]) == mask_shape
    assert tuple(sample['data_samples'].gt_sem_seg.shape) == mask_shape

    hook = cfg.custom_hooks[1]
    generator = PseudoLabelGenerator(str(tmp_path / 'out'), hook.dataloader, batch_size=3,
                                     eval_ann_file=hook.eval_ann_file)
    metrics = generator.run(tiny_model)  # scores the labels against the masks
    assert 0 <= metrics['pseudo_label/mIoU'] <= 100
    assert load_label_png(f'{tmp_path}/out/labels/{img_id}.png').shape == mask_shape
    assert load_cams(f'{tmp_path}/out/cams/{img_id}.npz')[1].shape[1:] == mask_shape


@pytest.mark.parametrize('nproc', [1, 2])
def test_overlapped_crf_gives_the_same_files(toy_voc, tiny_model, tmp_path, nproc):
    """Stored CAMs: the CRF overlapped with inference writes the sequential run's bytes."""
    files = {}
    for overlap in (False, True):
        out_dir = str(tmp_path / f'overlap{overlap}')
        generator = PseudoLabelGenerator(out_dir, dataloader_cfg(toy_voc), evaluate=False,
                                         nproc=nproc)
        generator.overlap_crf = overlap
        calls = []
        original = generator._run_crf
        pattern = osp.join(out_dir, 'labels', '*.png')

        def run_crf(*args, _calls=calls, _original=original, _pattern=pattern):
            _calls.append(glob.glob(_pattern))
            return _original(*args)

        generator._run_crf = run_crf
        generator.run(tiny_model)
        # overlapped: every label exists before the sequential CRF pass (which then skips)
        assert len(calls[0]) == (24 if overlap else 0)
        files[overlap] = {osp.relpath(p, out_dir): open(p, 'rb').read()
                          for p in glob.glob(f'{out_dir}/*/*')}
    assert len(files[True]) == 48
    assert files[True] == files[False]


@pytest.mark.parametrize('cores,threads,nproc,expected', [
    (2, 2, 2, False),  # two cores: the CRF would contend with the inference threads
    (2, 1, 1, True),
    (16, 8, 4, True),
    (16, 8, 9, False),
])
def test_overlap_follows_the_cpu_cores(tiny_model, tmp_path, monkeypatch, cores, threads,
                                       nproc, expected):
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: threads)
    generator = PseudoLabelGenerator(str(tmp_path), dict(dataset=None), nproc=nproc)
    assert generator._overlaps(tiny_model) is expected
    generator.overlap_crf = not expected  # set explicitly: the setting wins
    assert generator._overlaps(tiny_model) is (not expected)


def test_overlap_off_the_cpu(tmp_path, monkeypatch):
    """Inference off the CPU (here the meta device) leaves the cores to the CRF."""
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0}, raising=False)
    generator = PseudoLabelGenerator(str(tmp_path), dict(dataset=None), nproc=4)
    assert generator._overlaps(torch.nn.Linear(2, 2, device='meta'))
