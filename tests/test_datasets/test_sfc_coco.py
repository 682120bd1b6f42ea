# Copyright (c) mmsfc contributors. All rights reserved.
"""SFCCOCODataset: 81 classes, labels from the masks by default, the converter's layout."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmsfc.datasets import SFCCOCODataset
from mmsfc.datasets.sfc_coco import COCO_OBJECT_CLASSES


@pytest.fixture
def coco_root(tmp_path):
    """Three images of train2014 in the layout of tools/dataset_converters/coco.py."""
    root = tmp_path / 'coco'
    for folder in ('train2014', 'SegmentationClass/train2014', 'ImageSets'):
        os.makedirs(root / folder)
    masks = {'COCO_train2014_000000000009': [1, 80], 'COCO_train2014_000000000025': [25],
             'COCO_train2014_000000000030': [0]}
    rng = np.random.default_rng(0)
    for name, classes in masks.items():
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(
            root / 'train2014' / f'{name}.jpg')
        mask = np.full((20, 24), 255, dtype=np.uint8)
        mask[:10] = 0
        for i, cls in enumerate(classes):
            mask[10:, i * 4:i * 4 + 4] = cls
        Image.fromarray(mask).save(root / 'SegmentationClass' / 'train2014' / f'{name}.png')
    (root / 'ImageSets' / 'train2014.txt').write_text('\n'.join(masks) + '\n')
    return str(root)


def build(root, **kwargs):
    return SFCCOCODataset(data_root=root, ann_file='ImageSets/train2014.txt',
                          data_prefix=dict(img_path='train2014',
                                           seg_map_path='SegmentationClass/train2014'),
                          **kwargs)


def test_metainfo_has_background_and_the_80_categories():
    classes = SFCCOCODataset.METAINFO['classes']
    assert len(classes) == 81 == len(SFCCOCODataset.METAINFO['palette'])
    assert classes[0] == 'background' and classes[1:] == COCO_OBJECT_CLASSES
    assert classes[1] == 'person' and classes[80] == 'toothbrush'


def test_labels_come_from_the_masks_without_a_label_file(coco_root):
    with pytest.warns(UserWarning, match='1 image.* no foreground label'):
        dataset = build(coco_root)
    assert dataset.label_source == 'mask' and len(dataset) == 3
    first = dataset.get_data_info(0)
    assert first['cls_label'].shape == (80, ) and first['num_classes'] == 81
    assert np.flatnonzero(first['cls_label']).tolist() == [0, 79]  # person, toothbrush
    assert dataset.get_cat_ids(1) == [25]
    assert not dataset.get_data_info(2)['cls_label'].any()
    assert osp.basename(first['img_path']) == 'COCO_train2014_000000000009.jpg'


def test_a_label_file_takes_precedence(coco_root):
    labels = {f'COCO_train2014_{i:012d}': np.eye(80, dtype=np.float32)[i % 80]
              for i in (9, 25, 30)}
    np.save(osp.join(coco_root, 'cls_labels_coco.npy'), labels)
    dataset = build(coco_root, cls_label_file='cls_labels_coco.npy')
    assert dataset.label_source == 'file'
    assert dataset.get_cat_ids(0) == [10] and dataset.get_cat_ids(2) == [31]


def test_a_mask_value_beyond_the_classes_is_named(coco_root):
    path = osp.join(coco_root, 'SegmentationClass/train2014/COCO_train2014_000000000025.png')
    Image.fromarray(np.full((20, 24), 81, dtype=np.uint8)).save(path)
    with pytest.raises(ValueError, match='COCO_train2014_000000000025.png'):
        build(coco_root)
