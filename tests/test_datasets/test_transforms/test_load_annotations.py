# Copyright (c) mmsfc contributors. All rights reserved.
"""Masks holding anything but class indices are refused, naming the file."""
import os.path as osp
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from mmseg.registry import DATASETS
from PIL import Image

from conftest import REPO_ROOT
from mmsfc.datasets import SFCVOCDataset
from mmsfc.datasets.transforms import SFCLoadAnnotations
from mmsfc.engine import set_data_root
from mmsfc.testing import TOY_CLASSES


def load(path, **kwargs):
    return SFCLoadAnnotations(**kwargs)(dict(seg_map_path=str(path), seg_fields=[],
                                             reduce_zero_label=False, num_classes=5))


def test_valid_mask_with_ignored_pixels_loads(tmp_path):
    mask = np.array([[0, 1, 4], [255, 2, 3]], np.uint8)
    Image.fromarray(mask).save(tmp_path / 'ok.png')
    np.testing.assert_array_equal(load(tmp_path / 'ok.png')['gt_seg_map'], mask)


@pytest.mark.parametrize('values, message', [
    ([0, 1, 40], r'values 40 outside the class indices 0\.\.4'),
    ([0, 5, 90, 254], r'values 5, 90, 254 outside'),
])
def test_out_of_range_values_name_file_and_values(tmp_path, values, message):
    Image.fromarray(np.array([values, values], np.uint8)).save(tmp_path / 'ids.png')
    with pytest.raises(ValueError, match=message) as error:
        load(tmp_path / 'ids.png')
    assert str(tmp_path / 'ids.png') in str(error.value)
    # an explicit num_classes wins over the data info's
    assert load(tmp_path / 'ids.png', num_classes=256, ignore_index=-1)['gt_seg_map'].size


def test_rgb_mask_names_file(tmp_path):
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / 'rgb.png')
    with pytest.raises(ValueError, match=r'rgb\.png has shape \(4, 5, 3\)'):
        load(tmp_path / 'rgb.png')


@pytest.fixture
def voc_with_coco_ids(toy_voc, tmp_path):
    """A toy copy whose mask 2000_000002 holds a category id (40) and no SBD."""
    root = str(tmp_path / 'voc')
    shutil.copytree(toy_voc, root)
    for sub in ('SegmentationClass', 'SegmentationClassAug'):
        path = osp.join(root, sub, '2000_000002.png')
        mask = np.asarray(Image.open(path)).copy()
        mask[0, :3] = 40
        Image.fromarray(mask).save(path)
    return root


def test_stage1_mask_labels_refuse_bad_values(voc_with_coco_ids):
    with pytest.raises(ValueError, match=r'2000_000002\.png holds values 40'):
        SFCVOCDataset(data_root=voc_with_coco_ids, ann_file='ImageSets/Segmentation/train.txt',
                      data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                      metainfo=dict(classes=TOY_CLASSES), label_source='mask')


def test_stage4_config_refuses_bad_values(voc_with_coco_ids):
    cfg = Config.fromfile(osp.join(
        REPO_ROOT, 'tests/data/configs/deeplabv2_r18-d8_1xb4-40it_toyvoc-64x64_pseudo.py'))
    set_data_root(cfg, voc_with_coco_ids)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset[0]['inputs'].shape[0] == 3  # a valid mask passes
    with pytest.raises(ValueError, match=r'SegmentationClassAug/2000_000002\.png holds values 40'):
        dataset[2]
