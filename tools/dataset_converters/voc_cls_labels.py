# Copyright (c) mmsfc contributors. All rights reserved.
"""Write VOC image-level labels (``cls_labels.npy``) from the XML annotations.

Every ``<object>`` counts, difficult ones included (as the community label
files). The output is a pickled dict ``{image id: (20,) float32 multi-hot}``
that ``SFCVOCDataset(cls_label_file=...)`` reads.

Example::

    python tools/dataset_converters/voc_cls_labels.py data/VOCdevkit/VOC2012 \\
        --splits train_aug val
"""
import argparse
import os.path as osp
import sys

import numpy as np
from mmseg.datasets import PascalVOCDataset

from mmsfc.datasets.image_labels import label_from_voc_xml, save_label_file


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('voc_root', help='VOCdevkit/VOC2012')
    parser.add_argument('--splits', nargs='+', default=['train_aug', 'val'],
                        help='lists under ImageSets/Segmentation to cover')
    parser.add_argument('--out', default=None, help='default: VOC_ROOT/cls_labels.npy')
    args = parser.parse_args(argv)
    classes = PascalVOCDataset.METAINFO['classes']
    ids = []
    for split in args.splits:
        path = osp.join(args.voc_root, 'ImageSets/Segmentation', split + '.txt')
        if not osp.isfile(path):
            print(f'error: split list not found: {path}', file=sys.stderr)
            return 1
        with open(path) as f:
            ids += [line.strip() for line in f if line.strip()]
    labels = {}
    for img_id in dict.fromkeys(ids):
        xml = osp.join(args.voc_root, 'Annotations', img_id + '.xml')
        if not osp.isfile(xml):
            print(f'error: annotation not found: {xml}', file=sys.stderr)
            return 1
        with open(xml, 'rb') as f:
            labels[img_id] = label_from_voc_xml(f.read(), classes, xml)
    out = args.out or osp.join(args.voc_root, 'cls_labels.npy')
    save_label_file(out, labels)
    counts = np.sum(list(labels.values()), axis=0).astype(int)
    print(f'{out}: {len(labels)} images; images per class: ' +
          ', '.join(f'{name} {n}' for name, n in zip(classes[1:], counts)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
