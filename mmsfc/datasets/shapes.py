# Copyright (c) mmsfc contributors. All rights reserved.
"""A generated long-tailed dataset whose classes share a part: the SFC testbed.

SFC's claim (paper, "Analysis on SFC") is about two properties of real data:
classes **share features** (bicycle, motorbike and car all have wheels) and the
class distribution is **long-tailed**. A classifier trained on such data lets
the head class claim the shared part (its CAM over-activates on the wheels of
tail-class objects), and the tail classes under-activate. This module draws a
dataset with exactly these two properties, small enough to train on a CPU in
minutes:

- :data:`SHAPES_CLASSES`: eight object classes. Each object has a
  class-specific **body** (shape, texture and hue); five of them (the
  "vehicles") stand on two identical **wheels**, the shared part. The wheels
  belong to the object's mask, as a car's wheels belong to the car in VOC.
- **Long tail**: each class appears in an image independently with its
  probability ``q_c`` (default :data:`SHAPES_FREQUENCIES`: the head class
  "car" in about half of the images, the two tail classes in 2-3 %), so head
  and tail classes co-occur in some images. Images without any object are
  redrawn, at most ``max_objects`` objects are kept.
- **Clutter**: a smooth random background with random strokes and patches
  that belong to no class.

The files follow the VOC 2012 layout read by
:class:`~mmsfc.datasets.SFCVOCDataset`::

    root/
      JPEGImages/<id>.jpg                       RGB images
      SegmentationClass/<id>.png                exact masks (0 background, 1..K, palette PNG)
      Annotations/<id>.xml                      VOC-style object names
      ImageSets/Segmentation/{train_aug,train,val}.txt
      cls_labels.npy                            {id: (K,) multi-hot}
      meta.json                                 classes, target and drawn frequencies

``train`` is the first part of ``train_aug`` (its CAMs are scored, as VOC's
train-1464); ``val`` holds separate images for the segmentation stage. The
dataset is a function of its arguments: the same ``seed`` gives the same
files.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmseg.registry import DATASETS
from PIL import Image

from .colormap import voc_colormap
from .image_labels import save_label_file, save_voc_xml
from .sfc_voc import SFCVOCDataset


@dataclass(frozen=True)
class ShapeClass:
    """How one class is drawn.

    Attributes:
        name (str): Class name.
        body (str): Body shape, one of ``box``, ``bus``, ``tractor``,
            ``frame``, ``diamond``, ``hull``, ``cross``, ``bird``.
        texture (str): ``hstripes``, ``vstripes``, ``dstripes``, ``checker``,
            ``dots`` or ``plain``.
        hue (int): Mean hue on OpenCV's 0-179 scale.
        wheels (bool): Whether the object stands on the shared wheels.
    """
    name: str
    body: str
    texture: str
    hue: int
    wheels: bool


#: The classes, most frequent first (index ``c + 1`` in the masks).
SHAPES_STYLES: Tuple[ShapeClass, ...] = (
    ShapeClass('car', 'box', 'hstripes', 0, True),
    ShapeClass('boat', 'hull', 'vstripes', 110, False),
    ShapeClass('bus', 'bus', 'plain', 25, True),
    ShapeClass('plane', 'cross', 'checker', 95, False),
    ShapeClass('tractor', 'tractor', 'checker', 60, True),
    ShapeClass('bird', 'bird', 'dots', 15, False),
    ShapeClass('motorbike', 'frame', 'dstripes', 140, True),
    ShapeClass('bicycle', 'diamond', 'dots', 80, True),
)
#: Background first, then :data:`SHAPES_STYLES`.
SHAPES_CLASSES: Tuple[str, ...] = ('background', ) + tuple(s.name for s in SHAPES_STYLES)
#: Default probability that an image contains each class (the long tail).
SHAPES_FREQUENCIES: Tuple[float, ...] = (0.5, 0.3, 0.16, 0.1, 0.06, 0.04, 0.022, 0.018)


@DATASETS.register_module()
class SFCShapesDataset(SFCVOCDataset):
    """The generated long-tailed shapes dataset (:mod:`mmsfc.datasets.shapes`).

    :class:`SFCVOCDataset` with the classes of :data:`SHAPES_CLASSES`, the VOC
    colour map and the image-level labels of ``cls_labels.npy`` by default.
    """

    METAINFO = dict(classes=SHAPES_CLASSES, palette=voc_colormap(len(SHAPES_CLASSES)))

    def __init__(self, ann_file: str, cls_label_file: Optional[str] = 'cls_labels.npy',
                 **kwargs) -> None:
        super().__init__(ann_file=ann_file, cls_label_file=cls_label_file, **kwargs)


# --------------------------------------------------------------------- drawing
def _texture(kind: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A pattern in [0, 1] of shape ``(height, width)``."""
    y, x = np.mgrid[:height, :width].astype(np.float32)
    period = float(rng.uniform(5, 8))
    phase = float(rng.uniform(0, period))
    if kind == 'hstripes':
        return ((y + phase) % period < period / 2).astype(np.float32)
    if kind == 'vstripes':
        return ((x + phase) % period < period / 2).astype(np.float32)
    if kind == 'dstripes':
        return ((x + y + phase) % period < period / 2).astype(np.float32)
    if kind == 'checker':
        return (((x + phase) // period + (y + phase) // period) % 2).astype(np.float32)
    if kind == 'dots':
        dy, dx = (y + phase) % period - period / 2, (x + phase) % period - period / 2
        return (dy**2 + dx**2 < (period / 3.5)**2).astype(np.float32)
    return np.zeros((height, width), np.float32)


def _body_polygons(body: str, x0: int, y0: int, w: int, h: int) -> List[np.ndarray]:
    """Polygons of a body inside the box ``(x0, y0, w, h)``."""

    def poly(*points):
        return np.array([(x0 + px * w, y0 + py * h) for px, py in points], np.int32)

    if body == 'box':  # car: chassis and a cabin
        return [poly((0, .45), (1, .45), (1, 1), (0, 1)),
                poly((.2, .45), (.35, 0), (.7, 0), (.85, .45))]
    if body == 'bus':
        return [poly((0, 0), (1, 0), (1, 1), (0, 1))]
    if body == 'tractor':  # low body, high cab, chimney
        return [poly((0, .5), (1, .5), (1, 1), (0, 1)), poly((.55, 0), (.95, 0), (.95, .5),
                                                             (.55, .5)),
                poly((.15, .1), (.25, .1), (.25, .5), (.15, .5))]
    if body == 'frame':  # motorbike: a slanted frame with a seat
        return [poly((0, .6), (.35, .2), (.75, .25), (1, .6), (.6, 1), (.35, 1)),
                poly((.3, 0), (.7, 0), (.7, .2), (.3, .2))]
    if body == 'diamond':  # bicycle
        return [poly((.5, 0), (1, .55), (.5, 1), (0, .55))]
    if body == 'hull':  # boat: hull and sail
        return [poly((0, .6), (1, .6), (.8, 1), (.2, 1)), poly((.45, 0), (.45, .6), (.85, .6))]
    if body == 'cross':  # plane: fuselage and wings
        return [poly((0, .38), (1, .38), (1, .62), (0, .62)),
                poly((.4, 0), (.6, 0), (.6, 1), (.4, 1))]
    if body == 'bird':  # body, head, tail
        return [poly((.15, .35), (.7, .3), (.85, .55), (.6, .8), (.2, .75)),
                poly((.7, .15), (1, .3), (.8, .45)), poly((0, .3), (.2, .5), (0, .75))]
    raise ValueError(f'unknown body {body!r}')


def _colour(hue: int, rng: np.random.Generator) -> np.ndarray:
    """An RGB colour around ``hue`` with random saturation and value."""
    hsv = np.uint8([[[(hue + rng.integers(-6, 7)) % 180, rng.integers(150, 256),
                      rng.integers(130, 240)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _draw_object(image: np.ndarray, mask: np.ndarray, style: ShapeClass, label: int,
                 box: Tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """Paint one object into ``image`` (RGB float) and ``mask`` (in place)."""
    x0, y0, w, h = box
    body_h = int(h * 0.72) if style.wheels else h
    region = np.zeros(mask.shape, np.uint8)
    for polygon in _body_polygons(style.body, x0, y0, w, body_h):
        cv2.fillPoly(region, [polygon], 1)
    body = region.astype(bool)
    pattern = _texture(style.texture, *mask.shape, rng)
    base, other = _colour(style.hue, rng), _colour(style.hue, rng) * 0.45
    painted = base + (other - base) * pattern[..., None]
    image[body] = painted[body]
    if style.wheels:  # the shared part: identical for every wheeled class
        radius = max(int(round(h * 0.2)), 3)
        centre_y = y0 + body_h + radius // 3
        wheel = np.zeros(mask.shape, np.uint8)
        hub = np.zeros(mask.shape, np.uint8)
        for centre_x in (x0 + int(w * 0.22), x0 + int(w * 0.78)):
            cv2.circle(wheel, (centre_x, centre_y), radius, 1, -1)
            cv2.circle(hub, (centre_x, centre_y), max(radius // 2, 1), 1, -1)
        image[wheel.astype(bool)] = (35, 35, 38)
        image[hub.astype(bool)] = (205, 205, 200)
        region |= wheel
    mask[region.astype(bool)] = label


def _background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth colour field with clutter, RGB float ``(height, width, 3)``."""
    low = rng.uniform(40, 215, (3, 3, 3)).astype(np.float32)
    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    image += cv2.GaussianBlur(rng.normal(0, 18, (height, width, 3)).astype(np.float32),
                              (0, 0), 1.5)
    for _ in range(int(rng.integers(3, 9))):
        colour = tuple(float(v) for v in rng.uniform(30, 225, 3))
        kind = rng.integers(3)
        p1 = (int(rng.integers(width)), int(rng.integers(height)))
        p2 = (int(rng.integers(width)), int(rng.integers(height)))
        if kind == 0:
            cv2.line(image, p1, p2, colour, int(rng.integers(1, 4)))
        elif kind == 1:
            cv2.rectangle(image, p1, p2, colour, int(rng.integers(1, 3)))
        else:
            axes = (int(rng.integers(3, 12)), int(rng.integers(3, 12)))
            cv2.ellipse(image, p1, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    return image


def _draw_classes(frequencies: np.ndarray, max_objects: int,
                  rng: np.random.Generator) -> List[int]:
    """Classes (0-based) of one image: independent draws, at least one, at most ``max_objects``."""
    while True:
        present = np.flatnonzero(rng.random(len(frequencies)) < frequencies)
        if present.size:
            break
    if present.size > max_objects:
        present = rng.choice(present, max_objects, replace=False)
    return [int(c) for c in rng.permutation(present)]


def draw_shapes_image(rng: np.random.Generator,
                      size: Tuple[int, int] = (160, 160),
                      frequencies: Sequence[float] = SHAPES_FREQUENCIES,
                      max_objects: int = 3,
                      object_size: Tuple[float, float] = (0.3, 0.5),
                      min_visible: float = 0.6) -> Tuple[np.ndarray, np.ndarray]:
    """One image and its exact mask.

    Objects are placed at random; an object that would hide more than
    ``1 - min_visible`` of an earlier one is re-placed (up to 20 tries, then
    dropped), so every object drawn is visible and the image-level labels
    derived from the mask are the classes drawn.

    Args:
        rng (np.random.Generator): Random source.
        size (tuple[int, int]): ``(height, width)``.
        frequencies (Sequence[float]): ``q_c`` per class of
            :data:`SHAPES_STYLES`.
        max_objects (int): Objects per image at most.
        object_size (tuple[float, float]): Object width range, a fraction of
            the image width.
        min_visible (float): Fraction of each object that must stay visible.

    Returns:
        tuple[np.ndarray, np.ndarray]: RGB uint8 image ``(H, W, 3)`` and the
        uint8 mask ``(H, W)`` (0 background, ``c + 1`` for class ``c``).
    """
    height, width = size
    image = _background(height, width, rng)
    mask = np.zeros((height, width), np.uint8)
    for cls in _draw_classes(np.asarray(frequencies, np.float64), max_objects, rng):
        style = SHAPES_STYLES[cls]
        for _ in range(20):
            w = int(rng.uniform(*object_size) * width)
            h = int(w * rng.uniform(0.55, 0.8))
            x0 = int(rng.integers(0, max(width - w, 1)))
            y0 = int(rng.integers(0, max(height - h, 1)))
            trial_image, trial_mask = image.copy(), mask.copy()
            _draw_object(trial_image, trial_mask, style, cls + 1, (x0, y0, w, h), rng)
            visible = all(
                (trial_mask == label).sum() >= min_visible * (mask == label).sum()
                for label in np.unique(mask) if label)
            if visible and (trial_mask == cls + 1).sum() > 0:
                image, mask = trial_image, trial_mask
                break
    return np.clip(image, 0, 255).astype(np.uint8), mask


def generate_shapes_dataset(root: str,
                            num_train: int = 1200,
                            num_eval_train: int = 300,
                            num_val: int = 300,
                            image_size: Tuple[int, int] = (160, 160),
                            frequencies: Sequence[float] = SHAPES_FREQUENCIES,
                            max_objects: int = 3,
                            seed: int = 0) -> Dict[str, object]:
    """Write the long-tailed shapes dataset in the VOC layout under ``root``.

    Args:
        root (str): Output directory (created; existing files are overwritten).
        num_train (int): Images of ``train_aug`` (CAM training).
        num_eval_train (int): Images of ``train``, the first ones of
            ``train_aug``, on which CAMs and pseudo labels are scored.
        num_val (int): Images of ``val`` (segmentation evaluation).
        image_size (tuple[int, int]): ``(height, width)`` of every image.
        frequencies (Sequence[float]): Probability that an image contains each
            class of :data:`SHAPES_STYLES` (before the ``max_objects`` cap).
        max_objects (int): Objects per image at most.
        seed (int): Random seed; train and val use separate streams.

    Returns:
        dict: What ``meta.json`` holds: ``classes``, ``wheels`` (classes with
        the shared part), ``target_frequencies`` and ``frequencies`` (the
        fraction of ``train_aug`` images containing each class), and the
        image ids of each split.
    """
    if len(frequencies) != len(SHAPES_STYLES):
        raise ValueError(f'frequencies needs {len(SHAPES_STYLES)} values (one per class of '
                         f'SHAPES_STYLES), got {len(frequencies)}')
    if not all(0 < q <= 1 for q in frequencies):
        raise ValueError(f'frequencies must lie in (0, 1], got {list(frequencies)}')
    if not 0 <= num_eval_train <= num_train:
        raise ValueError(f'num_eval_train ({num_eval_train}) must lie in [0, num_train '
                         f'({num_train})]: train is a subset of train_aug')
    for sub in ('JPEGImages', 'SegmentationClass', 'Annotations', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    palette = [v for colour in SFCShapesDataset.METAINFO['palette'] for v in colour]

    splits = dict(train_aug=[f'shapes_train_{i:05d}' for i in range(num_train)],
                  val=[f'shapes_val_{i:05d}' for i in range(num_val)])
    labels = {}
    counts = np.zeros(len(SHAPES_STYLES), np.int64)
    for split, stream in (('train_aug', 0), ('val', 1)):
        rng = np.random.default_rng([seed, stream])
        for img_id in splits[split]:
            image, mask = draw_shapes_image(rng, image_size, frequencies, max_objects)
            present = [int(v) for v in np.unique(mask) if v]
            Image.fromarray(image).save(osp.join(root, 'JPEGImages', img_id + '.jpg'),
                                        quality=92)
            png = Image.fromarray(mask, mode='P')
            png.putpalette(palette)
            png.save(osp.join(root, 'SegmentationClass', img_id + '.png'))
            save_voc_xml(osp.join(root, 'Annotations', img_id + '.xml'), img_id, mask.shape,
                         [SHAPES_CLASSES[label] for label in present])
            label = np.zeros(len(SHAPES_STYLES), np.float32)
            label[np.asarray(present, np.int64) - 1] = 1
            labels[img_id] = label
            if split == 'train_aug':
                counts += label.astype(bool)
    splits['train'] = splits['train_aug'][:num_eval_train]
    for split, ids in splits.items():
        with open(osp.join(root, 'ImageSets/Segmentation', split + '.txt'), 'w') as f:
            f.writelines(i + '\n' for i in ids)
    save_label_file(osp.join(root, 'cls_labels.npy'), labels)
    meta = dict(classes=list(SHAPES_CLASSES),
                wheels=[s.name for s in SHAPES_STYLES if s.wheels],
                target_frequencies=[float(q) for q in frequencies],
                frequencies=[float(c) / max(num_train, 1) for c in counts],
                image_size=list(image_size), seed=seed,
                splits={k: len(v) for k, v in splits.items()})
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1)
    return dict(meta, ids=splits)
