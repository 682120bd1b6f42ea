# Copyright (c) mmsfc contributors. All rights reserved.
"""Image-level labels: multi-hot vectors of shape ``(K,)`` over the ``K``
foreground classes (class ``c`` of the dataset, background excluded, is entry
``c - 1``). Shared by the datasets and the dataset converters."""
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, Mapping, Sequence, Union

import numpy as np


def label_from_voc_xml(xml: Union[str, bytes], classes: Sequence[str], source: str) -> np.ndarray:
    """Classes of every ``<object><name>`` of a VOC annotation, difficult included.

    Args:
        xml (str | bytes): The annotation's content.
        classes (Sequence[str]): Dataset classes, background first.
        source (str): Name of the annotation, used in errors.

    Returns:
        np.ndarray: float32 multi-hot of shape ``(len(classes) - 1,)``.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise ValueError(f'corrupt annotation file {source}: {e}') from e
    label = np.zeros(len(classes) - 1, np.float32)
    for obj in root.iter('object'):
        name = obj.findtext('name', default='').strip()
        if name in classes[1:]:
            label[classes.index(name) - 1] = 1
    return label


def save_voc_xml(path: str, img_id: str, shape: Sequence[int], names: Sequence[str]) -> None:
    """Write a minimal VOC annotation: file name, size and one object per name.

    The counterpart of :func:`label_from_voc_xml`, for generated datasets.

    Args:
        path (str): Output ``.xml`` path.
        img_id (str): Image id (the file name is ``<img_id>.jpg``).
        shape (Sequence[int]): ``(height, width)`` of the image.
        names (Sequence[str]): Class name of every object.
    """
    root = ET.Element('annotation')
    ET.SubElement(root, 'filename').text = img_id + '.jpg'
    size = ET.SubElement(root, 'size')
    ET.SubElement(size, 'height').text = str(shape[0])
    ET.SubElement(size, 'width').text = str(shape[1])
    for name in names:
        obj = ET.SubElement(root, 'object')
        ET.SubElement(obj, 'name').text = name
        ET.SubElement(obj, 'difficult').text = '0'
    ET.ElementTree(root).write(path)


def label_from_mask(mask: np.ndarray, num_fg_classes: int, source: str = 'mask') -> np.ndarray:
    """Classes present in a mask (values ``1..K``; 0 and 255 ignored).

    Args:
        mask (np.ndarray): Class-index mask of shape ``(H, W)``.
        num_fg_classes (int): ``K``.
        source (str): Name of the mask, used in errors.

    Returns:
        np.ndarray: float32 multi-hot of shape ``(K,)``.

    Raises:
        ValueError: naming ``source``, for a mask that is not 2-D or holds
            values other than ``0..K`` and 255 (e.g. an RGB mask or COCO
            category ids), which would otherwise be dropped silently.
    """
    from .transforms.load_annotations import check_mask
    check_mask(mask, num_fg_classes + 1, source)
    values = np.unique(mask)
    values = values[(values > 0) & (values <= num_fg_classes)]
    label = np.zeros(num_fg_classes, np.float32)
    label[values.astype(np.int64) - 1] = 1
    return label


def load_label_file(path: str, num_fg_classes: int) -> Dict[str, np.ndarray]:
    """Read ``{image id: (K,) vector}`` from ``.npy`` (a pickled dict) or ``.json``.

    Integer keys (``2007000032`` for ``2007_000032``, as in the community VOC
    file) are kept as strings; look them up with :func:`lookup_label`.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'image-level label file not found: {path}')
    if path.endswith('.npy'):
        raw = np.load(path, allow_pickle=True).item()
    elif path.endswith('.json'):
        with open(path, encoding='utf-8') as f:
            raw = json.load(f)
    else:
        raise ValueError(f'image-level label file must be .npy or .json: {path}')
    labels = {}
    for key, value in raw.items():
        value = np.asarray(value, dtype=np.float32).reshape(-1)
        if value.size != num_fg_classes:
            raise ValueError(f'{path}: the label of {key} has {value.size} classes, but the '
                             f'dataset has {num_fg_classes} foreground classes')
        labels[str(key)] = value
    return labels


def lookup_label(labels: Mapping[str, np.ndarray], img_id: str, source: str) -> np.ndarray:
    """The label of ``img_id``, also under its integer form without ``_``."""
    for key in (img_id, img_id.replace('_', '')):
        if key in labels:
            return labels[key]
    raise KeyError(f'image {img_id} has no entry in the label file {source}')


def save_label_file(path: str, labels: Mapping[str, np.ndarray]) -> None:
    """Write ``labels`` as a pickled dict ``.npy`` (atomically)."""
    tmp = path + '.tmp.npy'
    np.save(tmp, dict(labels))
    os.replace(tmp, path)
