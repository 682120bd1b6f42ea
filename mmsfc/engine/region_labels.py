# Copyright (c) mmsfc contributors. All rights reserved.
"""Pseudo labels and IRN masks snapped to class-agnostic regions, in their own folder.

Opt-in step after stage 2 (``labels/``) or stage 3 (``masks/``) of
:class:`~mmsfc.engine.PseudoLabelGenerator` (its ``regions`` argument): each
label PNG, the image and its regions (:mod:`mmsfc.postprocess.regions`) go
through :func:`~mmsfc.postprocess.refine_with_regions`, and the result is
written to ``<labels|masks>_<type>/<id>.png`` with the guarantees of the
other outputs (sharded over ranks, atomic files, resumable, a manifest that
refuses outputs of other settings) and scored like them.
"""
import glob
import json
import os
import os.path as osp
import time
from dataclasses import asdict
from multiprocessing import Pool
from typing import Dict, List, Optional

import torch
from mmengine.dist import all_reduce, barrier, is_main_process
from mmengine.logging import print_log
from mmengine.utils import track_progress

from mmsfc.postprocess import (
    RegionRule,
    build_region_source,
    is_valid_label_png,
    load_label_png,
    refine_with_regions,
    save_label_png,
)

from .stage_files import (
    check_manifest,
    eval_indices,
    my_share,
    read_rgb,
    score_label_files,
    write_manifest,
)


def _refine_task(task: tuple) -> float:
    """One image: label PNG + image + regions → refined PNG; returns the seconds taken."""
    source, rule, img_path, image_flag, img_id, label_path, out_path, palette = task
    start = time.perf_counter()
    labels = load_label_png(label_path)
    image = read_rgb(img_path, image_flag)
    if image.shape[:2] != labels.shape:
        raise ValueError(f'image {img_path} is {image.shape[1]}x{image.shape[0]} but its label '
                         f'{label_path} is {labels.shape[1]}x{labels.shape[0]}')
    refined = refine_with_regions(labels, source(image, img_id), rule)
    save_label_png(out_path, refined, palette)
    return time.perf_counter() - start


class RegionLabelWriter:
    """Write and score the region-refined copy of a folder of label PNGs.

    Args:
        regions (dict): Region source config, ``dict(type='slic' |
            'felzenszwalb' | 'sam' | 'folder', **kwargs)`` (see
            :func:`~mmsfc.postprocess.build_region_source`). Built here, so a
            missing package, checkpoint or folder fails before any stage runs.
        rule (dict, optional): :class:`~mmsfc.postprocess.RegionRule` fields
            (``majority``, ``coverage``, ``keep_uncertain``).
        nproc (int): Worker processes per rank (sources that cannot run in
            workers, i.e. SAM, run in the main process).
    """

    def __init__(self, regions: dict, rule: Optional[dict] = None, nproc: int = 1) -> None:
        self.source = build_region_source(regions)
        self.type = regions['type']
        self.rule = RegionRule(**(rule or {}))
        self.nproc = max(int(nproc), 1)

    def out_dir(self, label_dir: str) -> str:
        """The folder of the refined copy of ``label_dir``: ``<label_dir>_<type>``."""
        return osp.normpath(label_dir) + '_' + self.type

    def run(self, generator, dataset, ids: List[str], label_dir: str, label_manifest: str,
            palette, prefix: str) -> Dict[str, float]:
        """Refine ``label_dir`` into :meth:`out_dir` and score it (``<prefix>_<type>``).

        Args:
            generator (PseudoLabelGenerator | IRNMaskGenerator): Supplies the
                image decode flag, the scoring switch and the split scored
                (``image_flag``, ``evaluate``, ``eval_ann_file``).
            dataset: The split's dataset.
            ids (list[str]): Image ids, in dataset order.
            label_dir (str): Folder of the label PNGs.
            label_manifest (str): The manifest of the run that wrote them
                (part of this step's manifest, so that new labels are never
                mixed with refinements of old ones).
            palette: The dataset's palette.
            prefix (str): Metric prefix of the labels, e.g. ``'pseudo_label'``.

        Returns:
            dict[str, float]: The metrics (all ranks); empty without scoring.
        """
        out_dir = self.out_dir(label_dir)
        manifest = self._manifest(label_manifest)
        if is_main_process():
            for path in glob.glob(osp.join(out_dir, '*.tmp.*')):
                os.remove(path)
            write_manifest(out_dir, manifest)
        barrier()
        check_manifest(out_dir, manifest, 'labels of other regions, rule or source labels')
        tasks = []
        for idx in my_share(range(len(ids))):
            label_path = osp.join(label_dir, ids[idx] + '.png')
            out_path = osp.join(out_dir, ids[idx] + '.png')
            if is_valid_label_png(out_path):
                continue
            if not is_valid_label_png(label_path):
                raise FileNotFoundError(f'region refinement needs the label {label_path}')
            tasks.append((self.source, self.rule, dataset.get_data_info(idx)['img_path'],
                          generator.image_flag, ids[idx], label_path, out_path, palette))
        print_log(f'{self.type} regions: {len(ids)} images, {len(tasks)} to refine on this '
                  f'rank', logger='current')
        seconds = self._refine(tasks)
        timing = torch.tensor([seconds, float(len(tasks))], dtype=torch.float64)
        all_reduce(timing)
        if timing[1] > 0:
            print_log(f'{self.type} regions: {float(timing[0] / timing[1]):.3f} s per image '
                      f'(regions + rule + PNG)', logger='current')
        barrier()
        if not generator.evaluate:
            return {}
        return score_label_files(dataset, ids, eval_indices(dataset, ids, generator.eval_ann_file),
                                 lambda img_id: osp.join(out_dir, img_id + '.png'),
                                 f'{prefix}_{self.type}')

    def _manifest(self, label_manifest: str) -> dict:
        manifest = dict(regions=self.source.settings(), rule=asdict(self.rule))
        with open(label_manifest) as f:
            manifest['labels'] = json.load(f)
        return json.loads(json.dumps(manifest, default=str))

    def _refine(self, tasks: list) -> float:
        if not tasks:
            return 0.0
        if self.nproc > 1 and self.source.parallel:
            with Pool(self.nproc) as pool:
                return float(sum(pool.map(_refine_task, tasks, chunksize=1)))
        return float(sum(track_progress(_refine_task, tasks)))
