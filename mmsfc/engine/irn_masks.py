# Copyright (c) mmsfc contributors. All rights reserved.
"""Stage 3: IRN edge maps + stage 2's stored CAMs → SFC's two-walk masks → mIoU."""
import json
import os.path as osp
from dataclasses import asdict
from typing import Dict, List, Optional

import torch
from mmengine.dist import barrier, is_main_process
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.utils import ProgressBar
from mmseg.registry import DATASETS

from mmsfc.postprocess import is_valid_cam_file, is_valid_label_png, load_cams, save_label_png
from mmsfc.postprocess.random_walk import RandomWalkParams, sfc_masks

from .stage_files import (
    check_manifest,
    eval_indices,
    image_flag,
    image_ids,
    img_id,
    model_manifest,
    my_share,
    remove_temporaries,
    score_label_files,
    subset_loader,
    write_manifest,
)


class IRNMaskGenerator:
    """Turn stage 2's CAMs and an IRN model into masks for a dataset split, and score them.

    Reads ``<out_dir>/cams/<id>.npz`` (written by
    :class:`~mmsfc.engine.PseudoLabelGenerator` with ``store_cams=True``),
    computes each image's boundary map with ``irn_model.test_step`` (e.g.
    :class:`SFCIRN`), runs SFC's two random walks
    (:func:`~mmsfc.postprocess.random_walk.sfc_masks`) and writes
    ``<out_dir>/<mask_dir>/<id>.png`` with stage 2's guarantees: sharded over
    ranks, written atomically, valid masks skipped, and
    ``<mask_dir>/manifest.json`` (the IRN weights and settings, the walk, the
    CAMs' manifest) refusing masks of another model or settings. The masks of
    the images with a ground-truth mask are scored (``mask`` prefix).

    Args:
        out_dir (str): Stage 2's output directory (holding ``cams/``).
        dataloader (dict): Dataloader config of the split; only its
            ``dataset`` and ``num_workers`` are used.
        walk (dict, optional): :class:`RandomWalkParams` fields.
        mask_dir (str): Subdirectory of ``out_dir`` for the masks.
        batch_size (int): Images of equal size run together.
        evaluate (bool): Score the masks.
        eval_ann_file (str, optional): Split list restricting scoring.
    """

    def __init__(self,
                 out_dir: str,
                 dataloader: dict,
                 walk: Optional[dict] = None,
                 mask_dir: str = 'masks',
                 batch_size: int = 1,
                 evaluate: bool = True,
                 eval_ann_file: Optional[str] = None) -> None:
        self.out_dir = out_dir
        self.cam_dir = osp.join(out_dir, 'cams')
        self.mask_dir = osp.join(out_dir, mask_dir)
        self.dataloader_cfg = dict(dataloader)
        self.walk = RandomWalkParams(**(walk or {}))
        self.batch_size = max(int(batch_size), 1)
        self.evaluate = evaluate
        self.eval_ann_file = eval_ann_file

    def _cam_path(self, image: str) -> str:
        return osp.join(self.cam_dir, image + '.npz')

    def _mask_path(self, image: str) -> str:
        return osp.join(self.mask_dir, image + '.png')

    def run(self, irn_model) -> Dict[str, float]:
        """Write this rank's masks, then score all; returns the metrics (all ranks)."""
        dataset = self.dataloader_cfg['dataset']
        dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        ids = image_ids(dataset)
        mine = my_share(range(len(ids)))
        missing = [self._cam_path(ids[i]) for i in mine
                   if not is_valid_cam_file(self._cam_path(ids[i]))]
        if missing:
            raise FileNotFoundError(
                f'IRN masks need the CAMs of stage 2: {len(missing)} missing or invalid, '
                f'e.g. {missing[0]}; run stage 2 into {self.out_dir} first')
        manifest = self._manifest(irn_model, dataset)
        if is_main_process():
            remove_temporaries(self.mask_dir)
            write_manifest(self.mask_dir, manifest)
        barrier()
        check_manifest(self.mask_dir, manifest, 'masks of another IRN model or settings')
        todo = [i for i in mine if not is_valid_label_png(self._mask_path(ids[i]))]
        print_log(f'IRN masks: {len(ids)} images, {len(todo)} to refine on this rank',
                  logger='current')
        self._refine(irn_model, dataset, todo)
        barrier()
        if not self.evaluate:
            return {}
        return score_label_files(dataset, ids, eval_indices(dataset, ids, self.eval_ann_file),
                                 self._mask_path, prefix='mask')

    def _manifest(self, irn_model, dataset) -> dict:
        """IRN weights and test settings, walk settings, classes, the CAMs' manifest."""
        manifest = model_manifest(irn_model, dataset)
        manifest['walk'] = asdict(self.walk)
        cam_manifest = osp.join(self.out_dir, 'manifest.json')
        if osp.isfile(cam_manifest):
            with open(cam_manifest) as f:
                manifest['cams'] = json.load(f)
        return manifest

    @torch.no_grad()
    def _refine(self, irn_model, dataset, todo: List[int]) -> None:
        """Edge maps and walks of ``todo`` (this rank's share), written as PNGs."""
        if not todo:
            return
        module = irn_model.module if is_model_wrapper(irn_model) else irn_model
        was_training = module.training
        module.eval()
        palette = dataset.metainfo['palette']
        loader = subset_loader(dataset, todo, self.batch_size, image_flag(dataset),
                               self.dataloader_cfg.get('num_workers', 0))
        progress = ProgressBar(len(loader)) if is_main_process() else None
        for data in loader:
            for sample in irn_model.test_step(data):
                image = img_id(sample.metainfo)
                keys, cam_w, cam_p = load_cams(self._cam_path(image))
                label = sfc_masks(keys, cam_w, cam_p, sample.edge_map.data[0], self.walk)
                save_label_png(self._mask_path(image), label, palette)
            if progress is not None:
                progress.update()
        module.train(was_training)
