# Copyright (c) mmsfc contributors. All rights reserved.
"""The generated long-tailed shapes dataset and class lists of any names."""
import filecmp
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmsfc.datasets import (
    SHAPES_CLASSES,
    SHAPES_FREQUENCIES,
    SHAPES_STYLES,
    SFCShapesDataset,
    SFCVOCDataset,
    draw_shapes_image,
    generate_shapes_dataset,
)


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    generate_shapes_dataset(root, num_train=24, num_eval_train=8, num_val=6,
                            image_size=(96, 112), seed=3)
    return root


def test_same_seed_same_files_other_seed_other_files(shapes_root, tmp_path):
    again, other = str(tmp_path / 'again'), str(tmp_path / 'other')
    generate_shapes_dataset(again, num_train=24, num_eval_train=8, num_val=6,
                            image_size=(96, 112), seed=3)
    generate_shapes_dataset(other, num_train=24, num_eval_train=8, num_val=6,
                            image_size=(96, 112), seed=4)
    for sub in ('JPEGImages', 'SegmentationClass', 'Annotations', 'ImageSets/Segmentation'):
        names = sorted(os.listdir(osp.join(shapes_root, sub)))
        assert names == sorted(os.listdir(osp.join(again, sub)))
        match, mismatch, errors = filecmp.cmpfiles(osp.join(shapes_root, sub),
                                                   osp.join(again, sub), names, shallow=False)
        assert not mismatch and not errors, (sub, mismatch, errors)
    masks = 'SegmentationClass/shapes_train_00000.png'
    assert not all(filecmp.cmp(osp.join(shapes_root, f'SegmentationClass/shapes_train_{i:05d}.png'),
                               osp.join(other, f'SegmentationClass/shapes_train_{i:05d}.png'),
                               shallow=False) for i in range(24)), masks


def test_layout_splits_and_labels_agree_with_masks(shapes_root):
    split = osp.join(shapes_root, 'ImageSets/Segmentation')
    read = lambda name: open(osp.join(split, name)).read().split()  # noqa: E731
    train_aug, train, val = read('train_aug.txt'), read('train.txt'), read('val.txt')
    assert (len(train_aug), len(val)) == (24, 6) and train == train_aug[:8]
    assert not set(val) & set(train_aug)
    labels = np.load(osp.join(shapes_root, 'cls_labels.npy'), allow_pickle=True).item()
    for img_id in train_aug + val:
        image = np.asarray(Image.open(osp.join(shapes_root, 'JPEGImages', img_id + '.jpg')))
        mask = np.asarray(Image.open(osp.join(shapes_root, 'SegmentationClass', img_id + '.png')))
        assert image.shape == (96, 112, 3) and mask.shape == (96, 112)
        present = np.unique(mask)
        assert present.max() <= len(SHAPES_STYLES) and 255 not in present
        expected = np.zeros(len(SHAPES_STYLES), np.float32)
        expected[present[present > 0] - 1] = 1
        assert expected.any(), img_id  # every image holds an object
        np.testing.assert_array_equal(labels[img_id], expected)
    # the dataset reads the same labels from the label file, the XML and the masks
    kwargs = dict(data_root=shapes_root, ann_file='ImageSets/Segmentation/train_aug.txt',
                  data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
    sources = [SFCShapesDataset(**kwargs), SFCShapesDataset(label_source='xml', **kwargs),
               SFCShapesDataset(label_source='mask', cls_label_file=None, **kwargs)]
    for idx in range(len(sources[0])):
        first = sources[0].get_data_info(idx)['cls_label']
        for dataset in sources[1:]:
            np.testing.assert_array_equal(dataset.get_data_info(idx)['cls_label'], first)
    assert sources[0].metainfo['classes'] == SHAPES_CLASSES
    assert len(sources[0].metainfo['palette']) == len(SHAPES_CLASSES)
    with open(osp.join(shapes_root, 'meta.json')) as f:
        meta = json.load(f)
    counts = sources[0].get_class_image_counts()
    np.testing.assert_allclose(meta['frequencies'], counts / 24)


def test_class_frequencies_follow_the_long_tail():
    rng = np.random.default_rng(0)
    num = 600
    counts = np.zeros(len(SHAPES_STYLES))
    for _ in range(num):
        _, mask = draw_shapes_image(rng, size=(64, 64))
        counts[np.unique(mask)[1:] - 1] += 1
    freqs = counts / num
    # the head class in >= 40 % of the images, the two tail classes in <= 3 %
    # (with room for sampling noise: binomial std at 3 % over 600 images is 0.7 %)
    assert freqs[0] >= 0.4
    assert (freqs[-2:] <= 0.03 + 0.015).all() and (freqs[-2:] > 0).all()
    # the configured order: each class at least as frequent as two places later
    assert all(freqs[i] > freqs[i + 2] for i in range(len(freqs) - 2)), freqs
    target = np.asarray(SHAPES_FREQUENCIES)
    assert np.corrcoef(freqs, target)[0, 1] > 0.97


def test_shared_part_is_identical_across_classes():
    """Wheels look the same under every wheeled class: the hub and tyre colours."""
    rng = np.random.default_rng(1)
    seen = {}
    for _ in range(200):
        image, mask = draw_shapes_image(rng, size=(96, 96), max_objects=1)
        (label, ) = np.unique(mask)[1:]
        dark = ((image.astype(int) - (35, 35, 38)) ** 2).sum(-1) < 60
        seen.setdefault(int(label), []).append((dark & (mask == label)).sum())
    for label, style in enumerate(SHAPES_STYLES, 1):
        if label in seen:
            has_tyres = np.mean(seen[label]) > 5
            assert has_tyres == style.wheels, style.name


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match='frequencies needs 8'):
        generate_shapes_dataset(str(tmp_path), frequencies=(0.5, 0.5))
    with pytest.raises(ValueError, match='num_eval_train'):
        generate_shapes_dataset(str(tmp_path), num_train=4, num_eval_train=5)


def test_any_class_list_indexes_masks_in_its_order(shapes_root):
    """Own class names work, and a VOC subset in another order is not relabelled."""
    classes = ('background', 'thing', 'other') + tuple(f'c{i}' for i in range(6))
    kwargs = dict(data_root=shapes_root, ann_file='ImageSets/Segmentation/train.txt',
                  data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                  cls_label_file='cls_labels.npy',
                  pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')])
    dataset = SFCVOCDataset(metainfo=dict(classes=classes), **kwargs)
    assert dataset.metainfo['classes'] == classes and dataset.label_map is None
    assert len(dataset.metainfo['palette']) == len(classes)
    info = dataset.get_data_info(0)
    raw = np.asarray(Image.open(info['seg_map_path']))
    np.testing.assert_array_equal(dataset[0]['gt_seg_map'], raw)
    voc = ('background', 'cat', 'bus', 'aeroplane', 'dog', 'car', 'bird', 'boat', 'train')
    reordered = SFCVOCDataset(metainfo=dict(classes=voc), **kwargs)
    np.testing.assert_array_equal(reordered[0]['gt_seg_map'], raw)
    assert reordered.metainfo['classes'] == voc
