# Copyright (c) mmsfc contributors. All rights reserved.
"""Class-agnostic regions of an image, for :func:`~mmsfc.postprocess.refine_with_regions`.

A region source is a callable ``source(image, img_id) -> regions``: ``image``
the RGB uint8 image ``(H, W, 3)``, ``img_id`` its file name without suffix,
``regions`` an integer region map ``(H, W)`` (0: no region, ``1..N``: region
ids) or a boolean stack ``(N, H, W)`` (overlaps allowed). Each source also
has ``settings()`` (what decides its regions, for the output manifest) and
``parallel`` (whether worker processes may run it).

Sources (:func:`build_region_source` by ``type``):

- ``'slic'``, ``'felzenszwalb'``: superpixels from scikit-image, offline,
  on any machine (:class:`SuperpixelRegions`).
- ``'sam'``: the automatic masks of the Segment Anything Model, through the
  ``segment-anything`` package and a checkpoint the user downloaded
  (:class:`SAMRegions`).
- ``'folder'``: precomputed regions from any generator (:class:`FolderRegions`).
"""
import glob
import os.path as osp
from typing import Optional

import numpy as np
from PIL import Image


class SuperpixelRegions:
    """Superpixels of scikit-image as a region map.

    Args:
        method (str): ``'slic'`` (``skimage.segmentation.slic``) or
            ``'felzenszwalb'`` (``skimage.segmentation.felzenszwalb``).
        **kwargs: Arguments of that function. Defaults: SLIC
            ``n_segments=200, compactness=10``; Felzenszwalb ``scale=100,
            sigma=0.5, min_size=50``. Finer superpixels change fewer pixels;
            coarser ones snap more of the label to image edges.
    """

    DEFAULTS = dict(slic=dict(n_segments=200, compactness=10.0),
                    felzenszwalb=dict(scale=100.0, sigma=0.5, min_size=50))
    parallel = True

    def __init__(self, method: str = 'slic', **kwargs) -> None:
        if method not in self.DEFAULTS:
            raise ValueError(f'superpixel method must be one of {sorted(self.DEFAULTS)}, '
                             f'got {method!r}')
        try:
            import skimage.segmentation  # noqa: F401
        except ImportError as e:
            raise ImportError('superpixel regions need scikit-image: '
                              'pip install scikit-image==0.26.0') from e
        self.method = method
        self.kwargs = dict(self.DEFAULTS[method], **kwargs)

    def settings(self) -> dict:
        return dict(type=self.method, **self.kwargs)

    def __call__(self, image: np.ndarray, img_id: str = '') -> np.ndarray:
        from skimage import segmentation
        if self.method == 'slic':
            return segmentation.slic(image, start_label=1, channel_axis=-1, **self.kwargs)
        return segmentation.felzenszwalb(image, channel_axis=-1, **self.kwargs) + 1


def sam_records_to_masks(records: list, shape) -> np.ndarray:
    """The masks of ``SamAutomaticMaskGenerator.generate`` as a bool stack ``(N, H, W)``.

    Args:
        records (list[dict]): The generator's output; each ``segmentation``
            a binary mask ``(H, W)`` (``output_mode='binary_mask'``) or a
            COCO RLE (``output_mode='coco_rle'``).
        shape (tuple): ``(H, W)`` of the image.
    """
    shape = tuple(shape)
    masks = []
    for i, record in enumerate(records):
        mask = record['segmentation']
        if isinstance(mask, dict):  # COCO RLE
            from pycocotools import mask as mask_utils
            mask = mask_utils.decode(mask)
        mask = np.asarray(mask).astype(bool)
        if mask.shape != shape:
            raise ValueError(f'SAM mask {i} has shape {mask.shape}, the image {shape}')
        masks.append(mask)
    return np.stack(masks) if masks else np.zeros((0, *shape), bool)


class SAMRegions:
    """The automatic masks of the Segment Anything Model (``segment-anything``).

    Needs ``pip install segment-anything`` and a checkpoint of its model zoo
    (e.g. ``sam_vit_h_4b8939.pth`` for ``model_type='vit_h'``); neither is
    shipped or downloaded. Both are checked when the source is built, the
    model is loaded at the first image (``torch.load(weights_only=True)``,
    onto the CPU, then ``device``).

    Args:
        checkpoint (str): Path of the SAM checkpoint.
        model_type (str): Key of ``segment_anything.sam_model_registry``
            (``'vit_h'``, ``'vit_l'``, ``'vit_b'``), matching the checkpoint.
        device (str, optional): Where SAM runs; None: ``'cuda'`` when
            available, else ``'cpu'`` (very slow).
        **kwargs: Arguments of ``SamAutomaticMaskGenerator`` (e.g.
            ``points_per_side=32, pred_iou_thresh=0.88``).
    """

    parallel = False  # one model per process; run in the main process

    def __init__(self, checkpoint: Optional[str] = None, model_type: str = 'vit_h',
                 device: Optional[str] = None, **kwargs) -> None:
        registry = _segment_anything().sam_model_registry
        if model_type not in registry:
            raise ValueError(f'SAM model_type must be one of {sorted(registry)}, '
                             f'got {model_type!r}')
        if not checkpoint or not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'SAM regions need a checkpoint of the segment-anything model zoo matching '
                f'model_type={model_type!r}; not found: {checkpoint!r}')
        self.checkpoint = checkpoint
        self.model_type = model_type
        self.device = device
        self.kwargs = kwargs
        self._generator = None

    def settings(self) -> dict:
        return dict(type='sam', checkpoint=osp.abspath(self.checkpoint),
                    model_type=self.model_type, **self.kwargs)

    def _build(self):
        import torch
        sam = _segment_anything()
        model = sam.sam_model_registry[self.model_type]()
        state = torch.load(self.checkpoint, map_location='cpu', weights_only=True)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f'{self.checkpoint} is not a SAM {self.model_type!r} '
                             f'checkpoint: {e}') from e
        device = self.device or ('cuda' if torch.cuda.is_available() else 'cpu')
        model.to(device).eval()
        return sam.SamAutomaticMaskGenerator(model, **self.kwargs)

    def __call__(self, image: np.ndarray, img_id: str = '') -> np.ndarray:
        if self._generator is None:
            self._generator = self._build()
        return sam_records_to_masks(self._generator.generate(image), image.shape[:2])

    def __getstate__(self):  # a worker builds its own model
        return dict(self.__dict__, _generator=None)


def _segment_anything():
    try:
        import segment_anything
    except ImportError as e:
        raise ImportError('SAM regions need the package segment-anything: '
                          'pip install segment-anything (and a SAM checkpoint)') from e
    return segment_anything


class FolderRegions:
    """Precomputed regions, one entry per image under ``root``.

    Layout (either, per image):

    - ``<root>/<img_id>.png``: a region map, a single-channel 8- or 16-bit
      PNG, 0 where no region is, ``1..N`` the region ids
      (:func:`save_region_map` writes one);
    - ``<root>/<img_id>/*.png``: one binary mask per region (nonzero inside;
      overlaps allowed), e.g. the automatic SAM masks saved one per file.

    Both must have the image's size.

    Args:
        root (str): The folder.
    """

    parallel = True

    def __init__(self, root: Optional[str] = None) -> None:
        if not root or not osp.isdir(root):
            raise FileNotFoundError(f'region folder not found: {root!r}')
        self.root = root

    def settings(self) -> dict:
        return dict(type='folder', root=osp.abspath(self.root))

    def __call__(self, image: np.ndarray, img_id: str = '') -> np.ndarray:
        shape = tuple(image.shape[:2])
        path = osp.join(self.root, img_id + '.png')
        if osp.isfile(path):
            region_map = _read_png(path)
            if region_map.ndim != 2:
                raise ValueError(f'{path} is not a single-channel region map '
                                 f'(shape {region_map.shape})')
            masks = [region_map]
        else:
            files = sorted(glob.glob(osp.join(self.root, img_id, '*.png')))
            if not files:
                raise FileNotFoundError(f'no regions for image {img_id!r}: neither {path} nor '
                                        f'{osp.join(self.root, img_id, "*.png")}')
            masks = [_read_png(f) for f in files]
        for mask, name in zip(masks, [path] if osp.isfile(path) else files):
            if mask.shape[:2] != shape:
                raise ValueError(f'{name} is {mask.shape[1]}x{mask.shape[0]}, the image '
                                 f'{img_id} {shape[1]}x{shape[0]}')
        if osp.isfile(path):
            return masks[0].astype(np.int64)
        return np.stack([(m > 0) if m.ndim == 2 else m.any(axis=-1) for m in masks])


def _read_png(path: str) -> np.ndarray:
    try:
        with Image.open(path) as png:
            return np.asarray(png)
    except OSError as e:
        raise ValueError(f'unreadable region file {path}: {e}') from e


def save_region_map(path: str, region_map: np.ndarray) -> None:
    """Write a region map as the PNG :class:`FolderRegions` reads (16-bit above 255 ids)."""
    region_map = np.asarray(region_map)
    if region_map.ndim != 2 or region_map.min(initial=0) < 0 or region_map.max(initial=0) > 65535:
        raise ValueError(f'a region map is (H, W) with ids in 0..65535, got shape '
                         f'{region_map.shape}')
    dtype = np.uint8 if region_map.max(initial=0) < 256 else np.uint16
    Image.fromarray(region_map.astype(dtype)).save(path)


#: The region sources by ``type``.
REGION_SOURCES = dict(slic=SuperpixelRegions, felzenszwalb=SuperpixelRegions, sam=SAMRegions,
                      folder=FolderRegions)


def build_region_source(cfg: dict):
    """A region source from ``dict(type=..., **kwargs)`` (types: :data:`REGION_SOURCES`)."""
    cfg = dict(cfg)
    kind = cfg.pop('type', None)
    if kind not in REGION_SOURCES:
        raise ValueError(f'region source type must be one of {sorted(REGION_SOURCES)}, '
                         f'got {kind!r}')
    if kind in SuperpixelRegions.DEFAULTS:
        return SuperpixelRegions(kind, **cfg)
    return REGION_SOURCES[kind](**cfg)
