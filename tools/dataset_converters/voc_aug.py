# Copyright (c) mmsfc contributors. All rights reserved.
"""Build VOC 2012 + SBD ("train_aug"): masks and split lists.

Writes ``SegmentationClassAug/<id>.png`` for every image of SBD train/val and
VOC train/val (VOC's own masks win where both exist, SBD's ``cls/<id>.mat``
elsewhere), and ``ImageSets/Segmentation/train_aug.txt`` = (SBD train ∪ SBD
val ∪ VOC train) − VOC val, sorted (10,582 ids on the real data). Existing
PNGs are kept unless ``--overwrite``; each file is written atomically.

Example::

    python tools/dataset_converters/voc_aug.py data/VOCdevkit/VOC2012 \\
        data/benchmark_RELEASE/dataset
"""
import argparse
import os
import os.path as osp
import shutil
import sys
from typing import List

import numpy as np
from PIL import Image
from scipy.io import loadmat


def read_list(path: str) -> List[str]:
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def sbd_mask(path: str) -> np.ndarray:
    """The class-index mask of an SBD ``cls/<id>.mat`` (``GTcls.Segmentation``)."""
    gt = loadmat(path, squeeze_me=True, struct_as_record=False)['GTcls']
    return np.asarray(gt.Segmentation, dtype=np.uint8)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('voc_root', help='VOCdevkit/VOC2012')
    parser.add_argument('sbd_root',
                        help='benchmark_RELEASE/dataset (holds cls/, train.txt, val.txt)')
    parser.add_argument('--overwrite', action='store_true', help='rewrite existing PNGs')
    args = parser.parse_args(argv)

    required = [osp.join(args.voc_root, 'ImageSets/Segmentation/train.txt'),
                osp.join(args.voc_root, 'ImageSets/Segmentation/val.txt'),
                osp.join(args.voc_root, 'SegmentationClass'),
                osp.join(args.sbd_root, 'cls'), osp.join(args.sbd_root, 'train.txt'),
                osp.join(args.sbd_root, 'val.txt')]
    missing = [path for path in required if not osp.exists(path)]
    if missing:
        print('error: missing inputs: ' + ', '.join(missing), file=sys.stderr)
        return 1

    voc_train = read_list(required[0])
    voc_val = read_list(required[1])
    sbd_ids = read_list(required[4]) + read_list(required[5])
    out_dir = osp.join(args.voc_root, 'SegmentationClassAug')
    os.makedirs(out_dir, exist_ok=True)
    palette = Image.open(osp.join(args.voc_root, 'SegmentationClass', voc_train[0] + '.png'))
    palette = palette.getpalette()

    written = kept = 0
    for img_id in sorted(set(sbd_ids) | set(voc_train) | set(voc_val)):
        dst = osp.join(out_dir, img_id + '.png')
        if osp.exists(dst) and not args.overwrite:
            kept += 1
            continue
        voc_png = osp.join(args.voc_root, 'SegmentationClass', img_id + '.png')
        tmp = dst + '.tmp.png'
        if osp.isfile(voc_png):
            shutil.copyfile(voc_png, tmp)
        else:
            mat = osp.join(args.sbd_root, 'cls', img_id + '.mat')
            if not osp.isfile(mat):
                print(f'error: no mask for {img_id}: neither {voc_png} nor {mat}', file=sys.stderr)
                return 1
            png = Image.fromarray(sbd_mask(mat), mode='P')
            png.putpalette(palette)
            png.save(tmp)
        os.replace(tmp, dst)
        written += 1

    train_aug = sorted((set(sbd_ids) | set(voc_train)) - set(voc_val))
    split = osp.join(args.voc_root, 'ImageSets/Segmentation/train_aug.txt')
    with open(split + '.tmp', 'w') as f:
        f.writelines(i + '\n' for i in train_aug)
    os.replace(split + '.tmp', split)
    print(f'SegmentationClassAug: {written} written, {kept} kept; train_aug: {len(train_aug)} '
          f'images (VOC train {len(voc_train)}, val {len(voc_val)}, SBD {len(set(sbd_ids))})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
