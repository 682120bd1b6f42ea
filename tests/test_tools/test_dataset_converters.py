# Copyright (c) mmsfc contributors. All rights reserved.
import importlib.util
import json
import os
import os.path as osp

import numpy as np
from PIL import Image
from scipy.io import savemat

from conftest import REPO_ROOT
from mmsfc.datasets import SFCCOCODataset


def load_converter(name):
    path = osp.join(REPO_ROOT, 'tools/dataset_converters', name + '.py')
    spec = importlib.util.spec_from_file_location(f'converter_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_png(path, array):
    os.makedirs(osp.dirname(path), exist_ok=True)
    png = Image.fromarray(array.astype(np.uint8), mode='P')
    png.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
    png.save(path)


def test_voc_aug(tmp_path, capsys):
    voc, sbd = tmp_path / 'VOC2012', tmp_path / 'sbd'
    rng = np.random.default_rng(0)
    masks = {i: rng.integers(0, 21, (6, 7)) for i in ('a', 'b', 'c', 'd', 'e')}
    (voc / 'ImageSets/Segmentation').mkdir(parents=True)
    (voc / 'ImageSets/Segmentation/train.txt').write_text('a\nb\n')
    (voc / 'ImageSets/Segmentation/val.txt').write_text('c\n')
    for i in ('a', 'b', 'c'):
        write_png(str(voc / 'SegmentationClass' / f'{i}.png'), masks[i])
    (sbd / 'cls').mkdir(parents=True)
    (sbd / 'train.txt').write_text('b\nd\nc\n')  # SBD has c, which VOC val excludes
    (sbd / 'val.txt').write_text('e\n')
    for i in ('b', 'c', 'd', 'e'):
        savemat(str(sbd / 'cls' / f'{i}.mat'),
                {'GTcls': {'Segmentation': (masks[i] + 1) % 21 if i == 'b' else masks[i]}})
    converter = load_converter('voc_aug')
    assert converter.main([str(voc), str(sbd)]) == 0
    assert (voc / 'ImageSets/Segmentation/train_aug.txt').read_text() == 'a\nb\nd\ne\n'
    for i in ('a', 'b', 'c', 'd', 'e'):
        # VOC's own masks win over SBD's (b differs in SBD)
        out = np.asarray(Image.open(voc / 'SegmentationClassAug' / f'{i}.png'))
        np.testing.assert_array_equal(out, masks[i])
    assert 'train_aug: 4 images' in capsys.readouterr().out
    assert converter.main([str(voc), str(tmp_path / 'nowhere')]) == 1
    assert 'missing inputs' in capsys.readouterr().err


def test_voc_cls_labels_from_xml(toy_voc, tmp_path):
    out = str(tmp_path / 'labels.npy')
    assert load_converter('voc_cls_labels').main([toy_voc, '--splits', 'train_aug', 'val',
                                                  '--out', out]) == 0
    labels = np.load(out, allow_pickle=True).item()
    toy = np.load(osp.join(toy_voc, 'cls_labels.npy'), allow_pickle=True).item()
    assert set(labels) == set(toy)
    for img_id, label in labels.items():
        assert label.shape == (20, )
        np.testing.assert_array_equal(label[:4], toy[img_id])
        assert not label[4:].any()
    assert load_converter('voc_cls_labels').main([toy_voc, '--splits', 'nope']) == 1


def test_coco(tmp_path):
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    square = [[2, 2, 12, 2, 12, 12, 2, 12]]  # x, y polygon of 10x10 at (2, 2)
    small = [[4, 4, 8, 4, 8, 8, 4, 8]]
    crowd_mask = np.zeros((20, 30), np.uint8, order='F')
    crowd_mask[15:, 20:] = 1
    from pycocotools import mask as mask_utils
    crowd_rle = mask_utils.encode(crowd_mask)
    crowd_rle['counts'] = crowd_rle['counts'].decode()
    coco = dict(
        images=[dict(id=1, file_name='COCO_val2014_000000000001.jpg', height=20, width=30),
                dict(id=2, file_name='COCO_val2014_000000000002.jpg', height=20, width=30),
                dict(id=3, file_name='COCO_val2014_000000000003.jpg', height=20, width=30)],
        categories=[dict(id=1, name='person'), dict(id=18, name='dog'), dict(id=90,
                                                                            name='toothbrush')],
        annotations=[
            dict(id=1, image_id=1, category_id=1, segmentation=square, area=100, iscrowd=0,
                 bbox=[2, 2, 10, 10]),
            dict(id=2, image_id=1, category_id=18, segmentation=small, area=16, iscrowd=0,
                 bbox=[4, 4, 4, 4]),
            dict(id=3, image_id=1, category_id=90, segmentation=crowd_rle, area=50, iscrowd=1,
                 bbox=[20, 15, 10, 5]),
            dict(id=4, image_id=3, category_id=18, segmentation=square, area=100, iscrowd=0,
                 bbox=[2, 2, 10, 10]),
        ])
    (root / 'annotations/instances_val2014.json').write_text(json.dumps(coco))
    assert load_converter('coco').main([str(root), '--splits', 'val2014']) == 0
    assert (root / 'ImageSets/val2014.txt').read_text().split() == [
        'COCO_val2014_000000000001', 'COCO_val2014_000000000003']
    mask = np.asarray(Image.open(root / 'SegmentationClass/val2014/COCO_val2014_000000000001.png'))
    person, dog = 1, 17  # 1-based positions in COCO_OBJECT_CLASSES
    assert mask[3, 3] == person and mask[6, 6] == dog and mask[0, 0] == 0
    assert mask[18, 25] == 255
    labels = np.load(root / 'cls_labels_coco.npy', allow_pickle=True).item()
    assert np.flatnonzero(labels['COCO_val2014_000000000001']).tolist() == [0, 16, 79]
    # the dataset reads the converter's layout, labels from file and mask agree on instances
    for source in ('file', 'mask'):
        dataset = SFCCOCODataset(
            data_root=str(root), ann_file='ImageSets/val2014.txt',
            data_prefix=dict(img_path='val2014', seg_map_path='SegmentationClass/val2014'),
            label_source=source, cls_label_file='cls_labels_coco.npy',
            check_files=False)  # the converter needs no images; neither does this check
        assert len(dataset) == 2 and dataset.get_cat_ids(1) == [17]
    assert load_converter('coco').main([str(root), '--splits', 'train2014']) == 1
