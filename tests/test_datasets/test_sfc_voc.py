# Copyright (c) mmsfc contributors. All rights reserved.
import json
import os.path as osp
import shutil

import numpy as np
import pytest

from mmsfc.datasets import SFCVOCDataset
from mmsfc.testing import TOY_CLASSES


def build(root, **kwargs):
    cfg = dict(data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
               data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
               metainfo=dict(classes=TOY_CLASSES))
    cfg.update(kwargs)
    return SFCVOCDataset(**cfg)


def test_label_sources_agree(toy_voc):
    from_file = build(toy_voc, cls_label_file='cls_labels.npy')
    from_xml = build(toy_voc, label_source='xml')
    from_mask = build(toy_voc, label_source='mask')
    assert len(from_file) == 24
    for idx in range(len(from_file)):
        label = from_file.get_data_info(idx)['cls_label']
        assert label.shape == (4,) and label.any()
        np.testing.assert_array_equal(label, from_xml.get_data_info(idx)['cls_label'])
        np.testing.assert_array_equal(label, from_mask.get_data_info(idx)['cls_label'])
        assert from_file.get_cat_ids(idx) == (np.flatnonzero(label) + 1).tolist()


def test_class_counts_from_labels(toy_voc):
    dataset = build(toy_voc, cls_label_file='cls_labels.npy')
    labels = np.load(osp.join(toy_voc, 'cls_labels.npy'), allow_pickle=True).item()
    expected = np.sum([labels[f'2000_{i:06d}'] for i in range(24)], axis=0)
    np.testing.assert_array_equal(dataset.get_class_image_counts(), expected)


def test_json_label_file_and_integer_keys(toy_voc, tmp_path):
    labels = np.load(osp.join(toy_voc, 'cls_labels.npy'), allow_pickle=True).item()
    as_json = tmp_path / 'labels.json'
    as_json.write_text(json.dumps({k: v.tolist() for k, v in labels.items()}))
    as_int = tmp_path / 'labels_int.npy'
    np.save(as_int, {int(k.replace('_', '')): v for k, v in labels.items()})
    reference = build(toy_voc, cls_label_file='cls_labels.npy')
    for path in (str(as_json), str(as_int)):
        dataset = build(toy_voc, cls_label_file=path)
        for idx in range(len(dataset)):
            np.testing.assert_array_equal(dataset.get_data_info(idx)['cls_label'],
                                          reference.get_data_info(idx)['cls_label'])


def test_bad_label_files(toy_voc, tmp_path):
    labels = np.load(osp.join(toy_voc, 'cls_labels.npy'), allow_pickle=True).item()
    missing = dict(labels)
    missing.pop('2000_000003')
    np.save(tmp_path / 'missing.npy', missing)
    with pytest.raises(KeyError, match='2000_000003'):
        build(toy_voc, cls_label_file=str(tmp_path / 'missing.npy'))
    np.save(tmp_path / 'voc20.npy', {k: np.zeros(20) for k in labels})
    with pytest.raises(ValueError, match='20 classes'):
        build(toy_voc, cls_label_file=str(tmp_path / 'voc20.npy'))
    with pytest.raises(FileNotFoundError, match='nope.npy'):
        build(toy_voc, cls_label_file='nope.npy')


def test_missing_xml_and_no_foreground(toy_voc, tmp_path):
    root = str(tmp_path / 'voc')
    shutil.copytree(toy_voc, root)
    np.save(osp.join(root, 'cls_labels.npy'), {
        **np.load(osp.join(root, 'cls_labels.npy'), allow_pickle=True).item(),
        '2000_000000': np.zeros(4, np.float32)})
    with pytest.warns(UserWarning, match='no foreground label'):
        dataset = build(root, cls_label_file='cls_labels.npy')
    assert not dataset.get_data_info(0)['cls_label'].any()
    import os
    os.remove(osp.join(root, 'Annotations', '2000_000005.xml'))
    with pytest.raises(FileNotFoundError, match='2000_000005'):
        build(root, label_source='xml')


def test_pipeline_packs_label_and_valid_box(toy_voc):
    dataset = build(
        toy_voc, cls_label_file='cls_labels.npy',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='SFCRandomPasteCrop', crop_size=96),
                  dict(type='PackSegInputs', meta_keys=('img_path', 'cls_label', 'valid_box',
                                                         'img_shape'))])
    item = dataset[0]
    assert item['inputs'].shape == (3, 96, 96)
    meta = item['data_samples'].metainfo
    np.testing.assert_array_equal(meta['cls_label'], dataset.get_data_info(0)['cls_label'])
    top, bottom, left, right = meta['valid_box']
    assert 0 <= top < bottom <= 96 and 0 <= left < right <= 96


def test_missing_image_named_in_error(toy_voc, tmp_path):
    root = str(tmp_path / 'voc')
    shutil.copytree(toy_voc, root)
    import os
    os.remove(osp.join(root, 'JPEGImages', '2000_000000.jpg'))
    with pytest.raises(FileNotFoundError, match='2000_000000.jpg: missing'):
        build(root, cls_label_file='cls_labels.npy')  # checked when the dataset is built
    dataset = build(root, cls_label_file='cls_labels.npy', check_files=False,
                    pipeline=[dict(type='LoadImageFromFile')])
    with pytest.raises(FileNotFoundError, match='2000_000000.jpg'):
        dataset.prepare_data(0)


def test_corrupt_image_named_in_error(toy_voc, tmp_path):
    root = str(tmp_path / 'voc')
    shutil.copytree(toy_voc, root)
    with open(osp.join(root, 'JPEGImages', '2000_000001.jpg'), 'wb') as f:
        f.write(b'not a jpeg')
    dataset = build(root, cls_label_file='cls_labels.npy', check_files=False,
                    pipeline=[dict(type='LoadImageFromFile')])
    with pytest.raises(AssertionError, match='2000_000001.jpg'):
        dataset.prepare_data(1)


def test_pseudo_label_mode_reads_masks_from_another_directory(toy_voc, tmp_path):
    pseudo_dir = tmp_path / 'pseudo'
    pseudo_dir.mkdir()
    from PIL import Image
    for idx in range(24):
        img_id = f'2000_{idx:06d}'
        gt = np.asarray(Image.open(osp.join(toy_voc, 'SegmentationClassAug', img_id + '.png')))
        Image.fromarray(np.where(gt > 0, 255, 0).astype(np.uint8)).save(
            pseudo_dir / f'{img_id}.png')
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
    train = build(toy_voc, cls_label_file='cls_labels.npy', pipeline=pipeline,
                  data_prefix=dict(img_path='JPEGImages', seg_map_path=str(pseudo_dir)))
    val = build(toy_voc, ann_file='ImageSets/Segmentation/val.txt', pipeline=pipeline)
    seg = train[0]['gt_seg_map']
    assert set(np.unique(seg)) <= {0, 255} and (seg == 255).any()
    assert set(np.unique(val[0]['gt_seg_map'])) - {0} <= {1, 2, 3, 4}


def test_segmentation_stage_needs_no_image_labels(toy_voc, tmp_path):
    """Stage 4 (label_source='none') on a dataset without XML and label file."""
    from mmengine.config import Config
    from mmseg.registry import DATASETS

    from conftest import REPO_ROOT
    from mmsfc.engine import set_data_root
    root = str(tmp_path / 'voc')
    shutil.copytree(toy_voc, root)
    shutil.rmtree(osp.join(root, 'Annotations'))
    import os
    os.remove(osp.join(root, 'cls_labels.npy'))
    with pytest.raises(FileNotFoundError, match='Annotations'):
        build(root)  # the image-label default needs the XML ...
    cfg = Config.fromfile(osp.join(
        REPO_ROOT, 'tests/data/configs/deeplabv2_r18-d8_1xb4-40it_toyvoc-64x64_pseudo.py'))
    set_data_root(cfg, root)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):  # ... the DeepLabV2 configs not
        dataset = DATASETS.build(loader.dataset)
        assert len(dataset) in (24, 8) and 'cls_label' not in dataset.get_data_info(0)
        sample = dataset[0]
        assert sample['data_samples'].gt_sem_seg.data.shape[-2:] == sample['inputs'].shape[-2:]
    with pytest.raises(ValueError, match="label_source='none'"):
        dataset.get_class_image_counts()


def test_split_images_checked_before_training(toy_voc, tmp_path):
    import os
    root = str(tmp_path / 'voc')
    shutil.copytree(toy_voc, root)
    images = osp.join(root, 'JPEGImages')
    os.remove(osp.join(images, '2000_000003.jpg'))
    with open(osp.join(images, '2000_000005.jpg'), 'rb') as f:
        head = f.read(100)
    with open(osp.join(images, '2000_000005.jpg'), 'wb') as f:
        f.write(head)  # truncated inside the JPEG header
    with open(osp.join(images, '2000_000007.jpg'), 'wb') as f:
        f.write(b'<html>not an image</html>')
    with pytest.raises(ValueError) as error:
        build(root, cls_label_file='cls_labels.npy')
    message = str(error.value)
    assert '3 of the 24 images of' in message and 'check_files=False' in message
    assert f'{images}/2000_000003.jpg: missing' in message
    assert f'{images}/2000_000005.jpg: unreadable' in message
    assert f'{images}/2000_000007.jpg: unreadable' in message
    assert len(build(root, cls_label_file='cls_labels.npy', check_files=False)) == 24


def test_config_without_sbd_and_xml_builds_every_loader(toy_voc, tmp_path):
    """configs/sfc/sfc_r50_1xb16-3966it_voc12-512x512_mask-labels.py: labels from the masks,
    no XML, no label file."""
    import os

    from mmengine.config import Config
    from mmseg.registry import DATASETS

    from conftest import REPO_ROOT
    from mmsfc.engine import set_data_root
    root = str(tmp_path / 'voc')
    shutil.copytree(toy_voc, root)
    shutil.rmtree(osp.join(root, 'Annotations'))
    shutil.rmtree(osp.join(root, 'SegmentationClassAug'))
    os.remove(osp.join(root, 'cls_labels.npy'))
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/sfc',
                                   'sfc_r50_1xb16-3966it_voc12-512x512_mask-labels.py'))
    set_data_root(cfg, root)
    loaders = [cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader,
               cfg.custom_hooks[1].dataloader]
    truth = build(toy_voc, ann_file='ImageSets/Segmentation/train.txt',
                  cls_label_file='cls_labels.npy')
    for loader in loaders:
        dataset = DATASETS.build(loader.dataset)
        assert dataset.label_source == 'mask' and len(dataset) == 8
        for idx in range(8):  # VOC's 20 classes; the toy uses the first 4
            np.testing.assert_array_equal(dataset.get_data_info(idx)['cls_label'][:4],
                                          truth.get_data_info(idx)['cls_label'])
