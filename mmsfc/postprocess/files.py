# Copyright (c) mmsfc contributors. All rights reserved.
"""Per-image output files of the pseudo-label stage, written atomically
(temporary file + rename), so an interrupted run never leaves a partial file.

CAMs: ``<img_id>.npz`` (compressed) holds ``keys`` (int16 ``(C,)``, the
class index of each channel, background 0 first, then the image's classes),
``cam_w`` and ``cam_p`` (float16 ``(C, H, W)``, max-normalised ``M_W`` and
``M_P`` before the background rule).

Pseudo labels: ``<img_id>.png``, uint8 class indices (255 uncertain) with the
dataset's palette, as VOC's ``SegmentationClass`` PNGs.
"""
import os
import os.path as osp
import zipfile
from typing import Sequence, Tuple

import numpy as np
from PIL import Image

#: Precision of the stored CAM maps.
CAM_DTYPE = np.float16


def as_stored_cam(cam: np.ndarray) -> np.ndarray:
    """``cam`` rounded to the stored precision, as float32 (what :func:`load_cams` returns).

    The streamed pseudo-label path (no CAM files) applies it before the CRF,
    so that streamed and stored runs give byte-identical labels.
    """
    return np.asarray(cam).astype(CAM_DTYPE).astype(np.float32)


def save_cams(path: str, keys: np.ndarray, cam_w: np.ndarray, cam_p: np.ndarray) -> None:
    """Write the maps of one image to ``path`` via a temporary file and a rename."""
    if cam_w.shape != cam_p.shape or cam_w.shape[0] != len(keys):
        raise ValueError(f'inconsistent CAM shapes for {path}: keys {len(keys)}, '
                         f'cam_w {cam_w.shape}, cam_p {cam_p.shape}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp.npz'
    np.savez_compressed(tmp, keys=np.asarray(keys, np.int16), cam_w=cam_w.astype(CAM_DTYPE),
                        cam_p=cam_p.astype(CAM_DTYPE))
    os.replace(tmp, path)


def load_cams(path: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``(keys, cam_w, cam_p)``; float16 maps are returned as float32."""
    try:
        with np.load(path) as data:
            keys, cam_w, cam_p = data['keys'], data['cam_w'], data['cam_p']
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f'unreadable CAM file {path}: {e}') from e
    if cam_w.shape != cam_p.shape or cam_w.ndim != 3 or cam_w.shape[0] != len(keys):
        raise ValueError(f'inconsistent CAM file {path}')
    return keys.astype(np.int64), cam_w.astype(np.float32), cam_p.astype(np.float32)


def is_valid_cam_file(path: str) -> bool:
    """Whether ``path`` exists and holds a complete, consistent CAM file."""
    if not osp.isfile(path):
        return False
    try:
        load_cams(path)
    except ValueError:
        return False
    return True


def save_label_png(path: str, label: np.ndarray, palette: Sequence[Sequence[int]]) -> None:
    """Write a uint8 label map as a palette PNG via a temporary file and a rename."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    png = Image.fromarray(np.asarray(label, np.uint8), mode='P')
    flat = [int(v) for colour in palette for v in colour]
    png.putpalette(flat + [255, 255, 255] * (256 - len(palette)))
    tmp = f'{path}.{os.getpid()}.tmp.png'
    png.save(tmp)
    os.replace(tmp, path)


def load_label_png(path: str) -> np.ndarray:
    """Read a label PNG as uint8 class indices ``(H, W)``."""
    try:
        with Image.open(path) as png:
            return np.asarray(png)
    except OSError as e:
        raise ValueError(f'unreadable label file {path}: {e}') from e


def is_valid_label_png(path: str) -> bool:
    """Whether ``path`` exists and decodes as a 2-D label map."""
    if not osp.isfile(path):
        return False
    try:
        return load_label_png(path).ndim == 2
    except ValueError:
        return False
