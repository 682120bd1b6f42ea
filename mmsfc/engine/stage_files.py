# Copyright (c) mmsfc contributors. All rights reserved.
"""What the pseudo-label stages share: manifests, image readers, sharding, loaders, scoring.

Stage 2 (:class:`~mmsfc.engine.PseudoLabelGenerator`) and stage 3
(:class:`~mmsfc.engine.IRNMaskGenerator`) each write one file per image into
a folder guarded by a ``manifest.json`` (what decides the files: the model's
weights and settings), skip the files that exist and are valid (resumable),
shard the images over ranks and score the files they wrote.
"""
import glob
import hashlib
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.dataset import pseudo_collate
from mmengine.dist import get_dist_info
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.structures import PixelData
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample
from PIL import Image
from torch.utils.data import DataLoader, Subset

from mmsfc.postprocess import UNCERTAIN, load_label_png

#: EXIF tag of the orientation; values 5-8 mean a 90-degree rotation.
_EXIF_ORIENTATION = 0x0112
#: mmcv decode flags that apply the EXIF orientation (the others ignore it).
_FLAGS_APPLYING_EXIF = ('color', 'grayscale')


# ------------------------------------------------------------------ manifests
def model_manifest(model, dataset) -> dict:
    """What a model decides of the outputs: its weights' hash, ``test_cfg``, the classes."""
    module = model.module if is_model_wrapper(model) else model
    digest = hashlib.sha1()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return dict(weights_sha1=digest.hexdigest(),
                test_cfg=json.loads(json.dumps(getattr(module, 'test_cfg', None), default=str)),
                classes=list(dataset.metainfo['classes']))


def write_manifest(directory: str, manifest: dict) -> None:
    """Write ``<directory>/manifest.json`` unless it exists (atomically)."""
    path = osp.join(directory, 'manifest.json')
    if osp.isfile(path):
        return
    os.makedirs(directory, exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(manifest, f, indent=1)
    os.replace(path + '.tmp', path)


def check_manifest(directory: str, manifest: dict, what: str) -> None:
    """Refuse to mix outputs: ``<directory>/manifest.json`` must equal ``manifest``.

    Args:
        directory (str): Folder of the outputs and their manifest.
        manifest (dict): What decides the outputs of this run.
        what (str): What the folder would then hold, for the error, e.g.
            ``'outputs of another model or settings'``.
    """
    path = osp.join(directory, 'manifest.json')
    with open(path) as f:
        existing = json.load(f)
    if existing != manifest:
        differing = sorted(k for k in manifest if existing.get(k) != manifest[k])
        raise ValueError(f'{directory} holds {what} (differing: {", ".join(differing)}; '
                         f'see {path}); choose another out_dir or remove it')


def remove_temporaries(*directories: str) -> None:
    """Delete temporary files an interrupted run left (never a finished output)."""
    for directory in directories:
        for path in glob.glob(osp.join(directory, '*.tmp.*')):
            os.remove(path)


# -------------------------------------------------------------- images, ranks
def img_id(info: dict) -> str:
    """The image's file name without extension: the name of its outputs."""
    return osp.splitext(osp.basename(info['img_path']))[0]


def image_ids(dataset) -> List[str]:
    return [img_id(dataset.get_data_info(i)) for i in range(len(dataset))]


def image_flag(dataset) -> str:
    """The mmcv decode flag (``color_type``) of the dataset's ``LoadImageFromFile``.

    The CRF and the visualisation read each image with it, so that they see
    the pixel frame the CAMs were computed in (with or without an EXIF
    rotation).
    """
    for transform in getattr(getattr(dataset, 'pipeline', None), 'transforms', []):
        if isinstance(transform, LoadImageFromFile):
            return transform.color_type
    return 'color'


def read_rgb(img_path: str, flag: str) -> np.ndarray:
    """The image ``(H, W, 3)`` uint8 RGB; an error naming the file if it does not decode."""
    try:
        image = mmcv.imread(img_path, flag=flag, channel_order='rgb')
    except (OSError, ValueError) as e:
        raise ValueError(f'cannot read image {img_path}: {e}') from e
    if image is None:
        raise ValueError(f'cannot read image {img_path}')
    return image


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS tells it)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def my_share(indices: Sequence[int]) -> List[int]:
    """This rank's share: item ``i`` belongs to rank ``i % world_size``."""
    rank, world_size = get_dist_info()
    return list(indices[rank::world_size])


def same_size_batches(dataset, indices: List[int], batch_size: int,
                      flag: str) -> List[List[int]]:
    """Batches (positions in ``indices``) of up to ``batch_size`` images of one size.

    Sizes come from the image headers (rotated by an EXIF orientation only
    when the decode ``flag`` applies it); an unreadable header is an error
    naming the file.
    """
    if batch_size == 1:
        return [[i] for i in range(len(indices))]
    by_size = defaultdict(list)
    for i, index in enumerate(indices):
        path = dataset.get_data_info(index)['img_path']
        try:
            with Image.open(path) as image:
                width, height = image.size
                rotated = image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
        except (OSError, ValueError, SyntaxError) as e:
            raise ValueError(f'cannot read image {path}: {e}') from e
        if rotated and flag in _FLAGS_APPLYING_EXIF:
            width, height = height, width
        by_size[(width, height)].append(i)
    return [positions[start:start + batch_size] for positions in by_size.values()
            for start in range(0, len(positions), batch_size)]


def subset_loader(dataset, indices: List[int], batch_size: int, flag: str,
                  num_workers: int = 0) -> DataLoader:
    """A loader of ``dataset[indices]`` (already this rank's share) in same-size batches.

    torch's ``Subset``, not ``BaseDataset.get_subset``: mmengine 0.10.7
    deep-copies there with a memo shared across calls, which can return
    stale objects.
    """
    return DataLoader(Subset(dataset, indices),
                      batch_sampler=same_size_batches(dataset, indices, batch_size, flag),
                      num_workers=num_workers, collate_fn=pseudo_collate)


# -------------------------------------------------------------------- scoring
def eval_indices(dataset, ids: List[str], eval_ann_file: Optional[str] = None) -> List[int]:
    """Images with a ground-truth mask file (and in ``eval_ann_file`` if set)."""
    indices = [i for i in range(len(ids))
               if osp.isfile(dataset.get_data_info(i).get('seg_map_path') or '')]
    if eval_ann_file:
        path = eval_ann_file
        if dataset.data_root and not osp.isabs(path):
            path = osp.join(dataset.data_root, path)
        with open(path) as f:
            wanted = {line.strip() for line in f if line.strip()}
        indices = [i for i in indices if ids[i] in wanted]
    return indices


def load_gt(info: dict, num_classes: int) -> torch.Tensor:
    """The ground truth ``(1, H, W)`` of a data info, checked by ``SFCLoadAnnotations``."""
    load = TRANSFORMS.build(dict(type='SFCLoadAnnotations', num_classes=num_classes))
    gt = load(dict(info, seg_fields=[]))['gt_seg_map']
    return torch.from_numpy(gt.astype(np.int64))[None]


def score_label_files(dataset, ids: List[str], indices: List[int],
                      label_path: Callable[[str], str], prefix: str,
                      extra_metrics: Sequence[dict] = (),
                      add_fields: Optional[Callable[[SegDataSample, str], None]] = None,
                      metainfo: Optional[dict] = None) -> Dict[str, float]:
    """mIoU of label PNGs (255 counted as background, docs/method_notes.md §15), sharded.

    Args:
        dataset: The split, with ``seg_map_path`` in its data infos.
        ids (list[str]): Image ids of the dataset.
        indices (list[int]): The images to score (all ranks' list).
        label_path (callable): Image id → its label PNG.
        prefix (str): Prefix of the ``IoUMetric`` (e.g. ``'pseudo_label'``).
        extra_metrics (Sequence[dict]): Further metrics run on the same
            samples before the IoU (e.g. the CAM metric).
        add_fields (callable, optional): ``(sample, img_id)`` → adds what the
            extra metrics read (e.g. ``cam_w``, ``cam_p``).
        metainfo (dict, optional): Added to every sample's metainfo.
    """
    if not indices:
        print_log(f'{prefix}: no image with a ground-truth mask to score', logger='current')
        return {}
    evaluator = Evaluator([*extra_metrics,
                           dict(type='IoUMetric', iou_metrics=['mIoU'], prefix=prefix)])
    evaluator.dataset_meta = dataset.metainfo
    num_classes = len(dataset.metainfo['classes'])
    for idx in my_share(indices):
        info = dataset.get_data_info(idx)
        label = load_label_png(label_path(ids[idx])).astype(np.int64)
        label[label == UNCERTAIN] = 0  # docs/method_notes.md §15
        sample = SegDataSample(metainfo=dict(img_path=info['img_path'], **(metainfo or {})))
        sample.gt_sem_seg = PixelData(data=load_gt(info, num_classes))
        sample.pred_sem_seg = PixelData(data=torch.from_numpy(label)[None])
        if add_fields is not None:
            add_fields(sample, ids[idx])
        evaluator.process([sample])
    return evaluator.evaluate(len(indices))
