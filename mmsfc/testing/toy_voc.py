# Copyright (c) mmsfc contributors. All rights reserved.
"""A small generated dataset in the VOC 2012 layout, for tests and the demo.

Each image shows one or two objects on a textured background; every class
has its own colour and shape, so a CAM network can learn it in minutes on a
CPU. The classes are the first four VOC foreground classes, so the VOC
dataset class and palette apply unchanged.
"""
import os
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np
from mmseg.datasets import PascalVOCDataset
from PIL import Image

from mmsfc.datasets.image_labels import save_voc_xml
from mmsfc.postprocess import save_label_png

#: Background plus the classes drawn by :func:`generate_toy_voc`.
TOY_CLASSES = PascalVOCDataset.METAINFO['classes'][:5]
#: Colour (RGB) and shape of each foreground class of :data:`TOY_CLASSES`.
_CLASS_STYLE = {
    1: ((220, 40, 40), 'rect'),
    2: ((40, 200, 60), 'ellipse'),
    3: ((40, 70, 220), 'triangle'),
    4: ((230, 200, 40), 'cross'),
}


def _draw(mask: np.ndarray, shape: str, box: Tuple[int, int, int, int]) -> None:
    """Draw ``shape`` filled with 1 into ``mask`` inside ``box = (x0, y0, x1, y1)``."""
    x0, y0, x1, y1 = box
    if shape == 'rect':
        cv2.rectangle(mask, (x0, y0), (x1, y1), 1, thickness=-1)
    elif shape == 'ellipse':
        center = ((x0 + x1) // 2, (y0 + y1) // 2)
        cv2.ellipse(mask, center, ((x1 - x0) // 2, (y1 - y0) // 2), 0, 0, 360, 1, -1)
    elif shape == 'triangle':
        points = np.array([[(x0 + x1) // 2, y0], [x0, y1], [x1, y1]], np.int32)
        cv2.fillPoly(mask, [points], 1)
    else:
        width = max((x1 - x0) // 3, 2)
        height = max((y1 - y0) // 3, 2)
        cv2.rectangle(mask, (x0, y0 + height), (x1, y1 - height), 1, thickness=-1)
        cv2.rectangle(mask, (x0 + width, y0), (x1 - width, y1), 1, thickness=-1)


def _sample(rng: np.random.Generator, size_range: Tuple[int, int]):
    """One image (RGB uint8), its mask and its class list."""
    height, width = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, 2))
    base = rng.integers(60, 190, 3)
    noise = cv2.GaussianBlur(rng.normal(0, 25, (height, width, 3)), (0, 0), 2)
    image = np.clip(base + noise, 0, 255)
    mask = np.zeros((height, width), np.uint8)
    classes = sorted(rng.choice(4, size=int(rng.integers(1, 3)), replace=False) + 1)
    for cls in classes:
        colour, shape = _CLASS_STYLE[int(cls)]
        obj_h = int(rng.integers(height // 4, height // 2 + 1))
        obj_w = int(rng.integers(width // 4, width // 2 + 1))
        y0 = int(rng.integers(0, height - obj_h))
        x0 = int(rng.integers(0, width - obj_w))
        obj = np.zeros_like(mask)
        _draw(obj, shape, (x0, y0, x0 + obj_w, y0 + obj_h))
        inside = obj.astype(bool)
        image[inside] = np.clip(np.asarray(colour) + rng.normal(0, 12, (inside.sum(), 3)), 0, 255)
        mask[inside] = cls
    present = sorted(int(c) for c in np.unique(mask) if c > 0)
    return image.astype(np.uint8), mask, present


def generate_toy_voc(root: str,
                     splits: Dict[str, int] = None,
                     size_range: Tuple[int, int] = (48, 80),
                     seed: int = 0) -> Dict[str, list]:
    """Write a toy dataset in the VOC 2012 layout under ``root``.

    Creates ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (palette
    PNG, values 0..4), ``SegmentationClassAug`` (a copy, as after the SBD
    conversion), ``Annotations/<id>.xml``, ``ImageSets/Segmentation/<split>.txt``
    and ``cls_labels.npy`` (``{id: (4,) multi-hot}``, the format of the
    community VOC label file over :data:`TOY_CLASSES`).
    Deterministic for a given ``seed``.

    Args:
        root (str): Output directory (created).
        splits (dict[str, int]): Images per split; defaults to
            ``{'train_aug': 24, 'train': 8, 'val': 8}``, where ``train`` is a
            subset of ``train_aug`` as in VOC.
        size_range (tuple[int, int]): Range of image sides in pixels.
        seed (int): Random seed.

    Returns:
        dict[str, list]: The image ids of each split.
    """
    splits = splits or {'train_aug': 24, 'train': 8, 'val': 8}
    rng = np.random.default_rng(seed)
    for sub in ('JPEGImages', 'SegmentationClass', 'SegmentationClassAug', 'Annotations',
                'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, sub), exist_ok=True)

    ids: Dict[str, list] = {}
    labels = {}
    train_aug = [f'2000_{i:06d}' for i in range(splits.get('train_aug', 0))]
    val = [f'2001_{i:06d}' for i in range(splits.get('val', 0))]
    for img_id in train_aug + val:
        image, mask, present = _sample(rng, size_range)
        Image.fromarray(image).save(osp.join(root, 'JPEGImages', img_id + '.jpg'), quality=95)
        for sub in ('SegmentationClass', 'SegmentationClassAug'):
            save_label_png(osp.join(root, sub, img_id + '.png'), mask,
                           PascalVOCDataset.METAINFO['palette'])
        save_voc_xml(osp.join(root, 'Annotations', img_id + '.xml'), img_id, mask.shape,
                     [TOY_CLASSES[c] for c in present])
        label = np.zeros(len(TOY_CLASSES) - 1, np.float32)
        label[np.asarray(present) - 1] = 1
        labels[img_id] = label
    ids['train_aug'] = train_aug
    ids['train'] = train_aug[:splits.get('train', 0)]
    ids['val'] = val
    for split, split_ids in ids.items():
        with open(osp.join(root, 'ImageSets/Segmentation', split + '.txt'), 'w') as f:
            f.writelines(i + '\n' for i in split_ids)
    np.save(osp.join(root, 'cls_labels.npy'), labels)
    return ids
