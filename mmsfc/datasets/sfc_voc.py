# Copyright (c) mmsfc contributors. All rights reserved.
import os.path as osp
import warnings
from typing import Dict, List, Optional

import mmcv
import numpy as np
from mmengine.fileio import get, get_local_path
from mmseg.datasets import BaseSegDataset, PascalVOCDataset
from mmseg.registry import DATASETS

from .colormap import voc_colormap
from .image_files import check_image_files
from .image_labels import label_from_mask, label_from_voc_xml, load_label_file, lookup_label


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
       ``1..K``, ignoring 0 and 255; any other value is an error naming the
       mask). This needs neither SBD nor the XML annotations.

    ``label_source='none'`` attaches no ``cls_label``: the segmentation stage
    (DeepLabV2) trains on masks only and needs no image-level labels.

    Args:
        cls_label_file (str, optional): Label file, relative to ``data_root``.
        label_source (str): ``'file'`` (requires ``cls_label_file``),
            ``'xml'``, ``'mask'`` or ``'none'``. Defaults to ``'file'`` when a label
            file is given, else :attr:`DEFAULT_LABEL_SOURCE`.
        xml_dir (str): Annotation directory relative to ``data_root``.
        check_files (bool): Before anything is trained, check that every
            image of the split exists and has a readable header (PIL reads
            the header only, no decode) and raise one error naming every bad
            file. About 0.05 ms per image from the page cache (see the
            README); False skips it. Files on a remote ``backend_args`` storage are
            not checked.
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset`.
    """

    METAINFO = PascalVOCDataset.METAINFO
    #: Label source when neither ``cls_label_file`` nor ``label_source`` is given.
    DEFAULT_LABEL_SOURCE = 'xml'

    def __init__(self,
                 ann_file: str,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 cls_label_file: Optional[str] = None,
                 label_source: Optional[str] = None,
                 xml_dir: str = 'Annotations',
                 check_files: bool = True,
                 **kwargs) -> None:
        if label_source is None:
            label_source = 'file' if cls_label_file else self.DEFAULT_LABEL_SOURCE
        if label_source not in ('file', 'xml', 'mask', 'none'):
            raise ValueError("label_source must be 'file', 'xml', 'mask' or 'none', "
                             f'got {label_source!r}')
        if label_source == 'file' and not cls_label_file:
            raise ValueError("label_source='file' needs cls_label_file")
        self.cls_label_file = cls_label_file
        self.label_source = label_source
        self.xml_dir = xml_dir
        self.check_files = check_files
        super().__init__(
            ann_file=ann_file, img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes=None) -> None:
        """No relabelling: masks are indexed in the order of ``metainfo['classes']``.

        mmseg's :class:`BaseSegDataset` treats a ``metainfo`` class list as a
        subset of :attr:`METAINFO`'s and remaps the masks from the default
        order (refusing any other name). Here the class list *defines* the
        indices: value ``c`` of a mask is ``classes[c]``, whatever the names,
        so datasets with their own classes (e.g. the generated
        :class:`SFCShapesDataset`) and a VOC subset in another order work
        alike.
        """
        return None

    def _update_palette(self) -> list:
        """The given palette if it fits the classes, else the VOC colour map."""
        palette = self._metainfo.get('palette', [])
        if len(palette) == len(self._metainfo['classes']):
            return list(palette)
        return voc_colormap(len(self._metainfo['classes']))

    @property
    def num_fg_classes(self) -> int:
        """Foreground classes ``K`` (all classes but the background)."""
        return len(self.metainfo['classes']) - 1

    # ----------------------------------------------------------------- loading
    def load_data_list(self) -> List[dict]:
        """Load the split and attach ``cls_label`` and ``num_classes`` to every data info.

        ``num_classes`` (``K + 1``) lets :class:`SFCLoadAnnotations` check the masks.
        """
        data_list = super().load_data_list()
        if self.check_files and self.backend_args is None:
            check_image_files([info['img_path'] for info in data_list], self.ann_file)
        for info in data_list:
            info['num_classes'] = self.num_fg_classes + 1
        if self.label_source == 'none':
            return data_list
        label_of = self._label_file() if self.label_source == 'file' else None
        no_foreground = []
        for info in data_list:
            img_id = osp.splitext(osp.basename(info['img_path']))[0]
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
        return load_label_file(path, self.num_fg_classes)

    def _lookup(self, labels: Dict[str, np.ndarray], img_id: str) -> np.ndarray:
        return lookup_label(labels, img_id, f'{self.cls_label_file} (split {self.ann_file})')

    def _label_from_xml(self, img_id: str) -> np.ndarray:
        path = osp.join(self.data_root or '', self.xml_dir, img_id + '.xml')
        try:
            content = get(path, backend_args=self.backend_args)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'no annotation {path} for image {img_id}; give cls_label_file or '
                "label_source='mask'") from e
        return label_from_voc_xml(content, self.metainfo['classes'], path)

    def _label_from_mask(self, info: dict) -> np.ndarray:
        if 'seg_map_path' not in info:
            raise ValueError("label_source='mask' needs data_prefix['seg_map_path']")
        with get_local_path(info['seg_map_path'], backend_args=self.backend_args) as path:
            mask = mmcv.imread(path, flag='unchanged', backend='pillow')
        if mask is None:
            raise ValueError(f'cannot read mask {info["seg_map_path"]}')
        return label_from_mask(mask, self.num_fg_classes, info['seg_map_path'])

    # -------------------------------------------------------------- statistics
    def _require_labels(self) -> None:
        if self.label_source == 'none':
            raise ValueError(f"{type(self).__name__}(label_source='none') of {self.ann_file} "
                             'has no image-level labels; give cls_label_file or label_source')

    def get_cat_ids(self, idx: int) -> List[int]:
        """Class indices (``1..K``, background excluded) present in image ``idx``."""
        self._require_labels()
        label = self.get_data_info(idx)['cls_label']
        return (np.flatnonzero(label) + 1).tolist()

    def get_class_image_counts(self) -> np.ndarray:
        """Number of images containing each foreground class, shape ``(K,)``.

        Read from the labels only (no image is opened); this is ``n_c`` of
        the distribution coefficients (paper Eq. 6).
        """
        self._require_labels()
        counts = np.zeros(self.num_fg_classes, np.int64)
        for idx in range(len(self)):
            counts += self.get_data_info(idx)['cls_label'].astype(bool)
        return counts
