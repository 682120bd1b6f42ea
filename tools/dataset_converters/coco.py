# Copyright (c) mmsfc contributors. All rights reserved.
"""COCO 2014 instances → 81-class PNG masks, split list and image-level labels.

For each image with at least one annotation of ``annotations/instances_<split>.json``:
``SegmentationClass/<split>/<stem>.png`` (0 background, ``1..80`` the classes
of :data:`mmsfc.datasets.COCO_OBJECT_CLASSES`, 255 on crowd regions not covered
by an instance; smaller instances are drawn over larger ones), its id in
``ImageSets/<split>.txt``, and its labels (every annotated category, crowd
included) in ``cls_labels_coco.npy`` (merged with an existing file). Existing
PNGs are kept (the conversion resumes); files are written atomically.

Example::

    python tools/dataset_converters/coco.py data/coco --splits train2014 val2014 --nproc 8
"""
import argparse
import os
import os.path as osp
import sys
from functools import partial
from multiprocessing import Pool
from typing import Dict, List, Tuple

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmsfc.datasets import COCO_OBJECT_CLASSES, SFCCOCODataset
from mmsfc.datasets.image_labels import load_label_file, save_label_file
from mmsfc.postprocess import save_label_png


def instance_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """Binary mask ``(H, W)`` of one annotation (polygons or RLE)."""
    segm = ann['segmentation']
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm['counts'], list):
        rle = mask_utils.frPyObjects(segm, height, width)
    else:
        rle = segm
    return mask_utils.decode(rle).astype(bool)


def class_mask(anns: List[dict], height: int, width: int,
               class_of: Dict[int, int]) -> np.ndarray:
    """The 81-class mask of one image: crowd 255, then instances by decreasing area."""
    mask = np.zeros((height, width), np.uint8)
    for ann in anns:
        if ann.get('iscrowd', 0):
            mask[instance_mask(ann, height, width)] = 255
    for ann in sorted((a for a in anns if not a.get('iscrowd', 0)),
                      key=lambda a: a['area'], reverse=True):
        mask[instance_mask(ann, height, width)] = class_of[ann['category_id']]
    return mask


def convert_image(item: Tuple[dict, List[dict]], out_dir: str, class_of: Dict[int, int]) -> str:
    image, anns = item
    stem = osp.splitext(image['file_name'])[0]
    dst = osp.join(out_dir, stem + '.png')
    if not osp.exists(dst):
        save_label_png(dst, class_mask(anns, image['height'], image['width'], class_of),
                       SFCCOCODataset.METAINFO['palette'])
    return stem


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('coco_root', help='holds annotations/instances_<split>.json')
    parser.add_argument('--splits', nargs='+', default=['train2014', 'val2014'])
    parser.add_argument('--nproc', type=int, default=1, help='worker processes')
    args = parser.parse_args(argv)

    label_path = osp.join(args.coco_root, 'cls_labels_coco.npy')
    labels = load_label_file(label_path, 80) if osp.isfile(label_path) else {}
    for split in args.splits:
        ann_file = osp.join(args.coco_root, 'annotations', f'instances_{split}.json')
        if not osp.isfile(ann_file):
            print(f'error: annotation file not found: {ann_file}', file=sys.stderr)
            return 1
        coco = COCO(ann_file)
        unknown = [c['name'] for c in coco.loadCats(coco.getCatIds())
                   if c['name'] not in COCO_OBJECT_CLASSES]
        if unknown:
            print(f'error: {ann_file} has categories outside the 80 COCO classes: {unknown}',
                  file=sys.stderr)
            return 1
        class_of = {c['id']: COCO_OBJECT_CLASSES.index(c['name']) + 1
                    for c in coco.loadCats(coco.getCatIds())}
        items = []
        for img_id in sorted(coco.getImgIds()):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            if anns:
                items.append((coco.loadImgs(img_id)[0], anns))
        out_dir = osp.join(args.coco_root, 'SegmentationClass', split)
        os.makedirs(out_dir, exist_ok=True)
        work = partial(convert_image, out_dir=out_dir, class_of=class_of)
        if args.nproc > 1:
            with Pool(args.nproc) as pool:
                stems = pool.map(work, items, chunksize=64)
        else:
            stems = [work(item) for item in items]
        for (_, anns), stem in zip(items, stems):
            label = np.zeros(80, np.float32)
            label[[class_of[a['category_id']] - 1 for a in anns]] = 1
            labels[stem] = label
        os.makedirs(osp.join(args.coco_root, 'ImageSets'), exist_ok=True)
        split_file = osp.join(args.coco_root, 'ImageSets', split + '.txt')
        with open(split_file + '.tmp', 'w') as f:
            f.writelines(stem + '\n' for stem in sorted(stems))
        os.replace(split_file + '.tmp', split_file)
        print(f'{split}: {len(stems)} images with annotations of {len(coco.getImgIds())}')
    save_label_file(label_path, labels)
    print(f'{label_path}: {len(labels)} images')
    return 0


if __name__ == '__main__':
    sys.exit(main())
