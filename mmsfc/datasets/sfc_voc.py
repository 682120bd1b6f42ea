# Copyright (c) mmsfc contributors. All rights reserved.
import json
import os.path as osp
import warnings
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional

import mmcv
import numpy as np
from mmengine.fileio import get, get_local_path
from mmseg.datasets import BaseSegDataset, PascalVOCDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class SFCVOCDataset(BaseSegDataset):
    """PASCAL VOC 2012 (optionally with the SBD masks) with image-level labels.

    Layout under ``data_root``: ``JPEGImages/<id>.jpg``, masks under
    ``data_prefix['seg_map_path']`` (``SegmentationClass``,
    ``SegmentationClassAug`` or a pseudo-label directory; may be None for
    classification only), ``Annotations/<id>.xml``, and the split list
    ``ann_file`` (one id per line, e.g. ``ImageSets/Segmentation/train.txt``).

    Every sample gets ``cls_label``, a float32 multi-hot array of shape
    ``(K,)`` over the foreground classes (``K = len(classes) - 1``), taken
    from the first source that applies:

    1. ``cls_label_file``: ``.npy`` holding a dict ``{id: (K,) vector}`` (the
       community ``cls_labels.npy``; integer keys such as ``2007000032`` for
       ``2007_000032`` are understood) or ``.json`` ``{id: [K values]}``;
    2. ``label_source='xml'``: the object names of ``Annotations/<id>.xml``,
       difficult objects included;
    3. ``label_source='mask'``: the classes present in the mask (values
       ``1..K``, ignoring 0 and 255).

    Args:
        cls_label_file (str, optional): Label file, relative to ``data_root``.
        label_source (str): ``'file'`` (requires ``cls_label_file``),
            ``'xml'`` or ``'mask'``. Defaults to ``'file'`` when a label
            file is given, else ``'xml'``.
        xml_dir (str): Annotation directory relative to ``data_root``.
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset`.
    """

    METAINFO = PascalVOCDataset.METAINFO

    def __init__(self,
                 ann_file: str,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 cls_label_file: Optional[str] = None,
                 label_source: Optional[str] = None,
                 xml_dir: str = 'Annotations',
                 **kwargs) -> None:
        if label_source is None:
            label_source = 'file' if cls_label_file else 'xml'
        if label_source not in ('file', 'xml', 'mask'):
            raise ValueError(f"label_source must be 'file', 'xml' or 'mask', got {label_source!r}")
        if label_source == 'file' and not cls_label_file:
            raise ValueError("label_source='file' needs cls_label_file")
        self.cls_label_file = cls_label_file
        self.label_source = label_source
        self.xml_dir = xml_dir
        super().__init__(
            ann_file=ann_file, img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @property
    def num_fg_classes(self) -> int:
        """Foreground classes ``K`` (all classes but the background)."""
        return len(self.metainfo['classes']) - 1

    # ----------------------------------------------------------------- loading
    def load_data_list(self) -> List[dict]:
        """Load the split and attach ``img_id`` and ``cls_label``."""
        data_list = super().load_data_list()
        label_of = self._label_file() if self.label_source == 'file' else None
        no_foreground = []
        for info in data_list:
            img_id = osp.splitext(osp.basename(info['img_path']))[0]
            info['img_id'] = img_id
            if label_of is not None:
                label = self._lookup(label_of, img_id)
            elif self.label_source == 'xml':
                label = self._label_from_xml(img_id)
            else:
                label = self._label_from_mask(info)
            info['cls_label'] = label
            if not label.any():
                no_foreground.append(img_id)
        if no_foreground:
            warnings.warn(f'{len(no_foreground)} image(s) of {self.ann_file} have no '
                          f'foreground label, e.g. {no_foreground[:5]}', stacklevel=2)
        return data_list

    def _label_file(self) -> Dict[str, np.ndarray]:
        path = self.cls_label_file
        if self.data_root and not osp.isabs(path):
            path = osp.join(self.data_root, path)
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
            if value.size != self.num_fg_classes:
                raise ValueError(f'{path}: the label of {key} has {value.size} classes, '
                                 f'but the dataset has {self.num_fg_classes} foreground '
                                 'classes')
            labels[str(key)] = value
        return labels

    def _lookup(self, labels: Dict[str, np.ndarray], img_id: str) -> np.ndarray:
        for key in (img_id, img_id.replace('_', '')):
            if key in labels:
                return labels[key]
        raise KeyError(f'image {img_id} of {self.ann_file} has no entry in the '
                       f'label file {self.cls_label_file}')

    def _label_from_xml(self, img_id: str) -> np.ndarray:
        path = osp.join(self.data_root or '', self.xml_dir, img_id + '.xml')
        try:
            root = ET.fromstring(get(path, backend_args=self.backend_args))
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'no annotation {path} for image {img_id}; give cls_label_file or '
                "label_source='mask'") from e
        except ET.ParseError as e:
            raise ValueError(f'corrupt annotation file {path}: {e}') from e
        classes = self.metainfo['classes']
        label = np.zeros(self.num_fg_classes, np.float32)
        for name in root.iter('name'):
            cls = name.text.strip() if name.text else ''
            if cls in classes:
                label[classes.index(cls) - 1] = 1
        return label

    def _label_from_mask(self, info: dict) -> np.ndarray:
        if 'seg_map_path' not in info:
            raise ValueError("label_source='mask' needs data_prefix['seg_map_path']")
        with get_local_path(info['seg_map_path'], backend_args=self.backend_args) as path:
            mask = mmcv.imread(path, flag='unchanged', backend='pillow')
        if mask is None:
            raise ValueError(f'cannot read mask {info["seg_map_path"]}')
        values = np.unique(mask)
        values = values[(values > 0) & (values <= self.num_fg_classes)]
        label = np.zeros(self.num_fg_classes, np.float32)
        label[values.astype(np.int64) - 1] = 1
        return label

    # -------------------------------------------------------------- statistics
    def get_cat_ids(self, idx: int) -> List[int]:
        """Class indices (``1..K``, background excluded) present in image ``idx``."""
        label = self.get_data_info(idx)['cls_label']
        return (np.flatnonzero(label) + 1).tolist()

    def get_class_image_counts(self) -> np.ndarray:
        """Number of images containing each foreground class, shape ``(K,)``.

        Read from the labels only (no image is opened); this is ``n_c`` of
        the distribution coefficients (paper Eq. 6).
        """
        counts = np.zeros(self.num_fg_classes, np.int64)
        for idx in range(len(self)):
            counts += self.get_data_info(idx)['cls_label'].astype(bool)
        return counts
