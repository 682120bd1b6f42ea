# Copyright (c) mmsfc contributors. All rights reserved.
"""Stage 2: multi-scale CAMs → CAM mIoU → dense CRF → pseudo-label PNGs → mIoU.

One code path behind two entry points: :class:`CAMToPseudoLabelHook` (after
CAM training) and ``tools/make_pseudo_labels.py`` (a checkpoint).
"""
import os.path as osp
from contextlib import ExitStack
from dataclasses import asdict
from multiprocessing import Pool
from multiprocessing.pool import ThreadPool
from typing import Dict, List, Optional, Set

import mmcv
import numpy as np
import torch
from mmengine.dist import all_reduce, barrier, is_main_process
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.structures import PixelData
from mmengine.utils import ProgressBar, track_parallel_progress, track_progress
from mmseg.registry import DATASETS, VISUALIZERS
from mmseg.structures import SegDataSample

from mmsfc.postprocess import (
    CRFParams,
    as_stored_cam,
    cams_to_crf_label,
    is_valid_cam_file,
    is_valid_label_png,
    load_cams,
    load_label_png,
    save_cams,
    save_label_png,
)

from .irn_masks import IRNMaskGenerator
from .stage_files import (
    check_manifest,
    eval_indices,
    image_flag,
    image_ids,
    img_id,
    load_gt,
    model_manifest,
    my_share,
    read_rgb,
    remove_temporaries,
    score_label_files,
    subset_loader,
    usable_cores,
    write_manifest,
)


def _present_keys(cls_label: np.ndarray) -> np.ndarray:
    """Channel indices ``[0, 1 + present classes]`` of a multi-hot label."""
    return np.concatenate([[0], np.flatnonzero(np.asarray(cls_label)) + 1]).astype(np.int64)


def _label_image(img_path: str, image_flag: str, keys: np.ndarray, cam_w: np.ndarray,
                 cam_p: np.ndarray, png_path: str, crf_kwargs: dict, palette) -> str:
    """CAMs of one image + the image → its pseudo-label PNG."""
    image = read_rgb(img_path, image_flag)
    if image.shape[:2] != cam_w.shape[1:]:
        raise ValueError(f'image {img_path} is {image.shape[1]}x{image.shape[0]} as read for '
                         f'the CRF ({image_flag!r}) but its CAMs are {cam_w.shape[2]}x'
                         f'{cam_w.shape[1]}')
    save_label_png(png_path, cams_to_crf_label(image, keys, cam_w, cam_p, **crf_kwargs), palette)
    return png_path


def _crf_task(task: tuple) -> str:
    """Worker job on a CAM file (module level, so that it pickles)."""
    img_path, image_flag, cam_path, png_path, crf_kwargs, palette = task
    if is_valid_label_png(png_path):
        return png_path
    return _label_image(img_path, image_flag, *load_cams(cam_path), png_path, crf_kwargs,
                        palette)


class PseudoLabelGenerator:
    """Turn a CAM model into pseudo labels for a dataset split, and score each step.

    Outputs under ``out_dir``: ``cams/<id>.npz`` (max-normalised ``M_W`` and
    ``M_P`` of the present classes, float16; see :mod:`mmsfc.postprocess.files`)
    and ``labels/<id>.png`` (CRF pseudo labels, 255 uncertain, docs/method_notes.md §13).

    - **Sharded**: image ``i`` belongs to rank ``i % world_size``, which infers
      and labels it, so under N ranks every file is written exactly once.
    - **Resumable**: every file is written atomically, and images whose outputs
      exist and are valid are skipped, so an interrupted run restarted gives
      the files of an uninterrupted one. ``manifest.json`` records the model
      weights' hash and the settings; a run that differs is refused.
    - **Scored** from the files (so reruns score everything): the CAMs with
      :class:`SFCCAMMetric` and the pseudo labels with mmseg's ``IoUMetric``
      with 255 counted as background (docs/method_notes.md §15), on the images that have
      a ground-truth mask (optionally only those of ``eval_ann_file``).
    - ``store_cams=False`` streams each image's CAMs straight into the CRF pool
      without writing ``cams/`` (for COCO-sized runs); the CAM metric then
      covers only the images inferred in this run.

    Args:
        out_dir (str): Output directory.
        dataloader (dict): Dataloader config of the split; only its
            ``dataset`` (with ``cls_label`` and, for scoring, ``seg_map_path``)
            and ``num_workers`` are used: sharding and batching happen here.
        cam_metric (dict, optional): :class:`SFCCAMMetric` config; None skips
            CAM scoring.
        crf (dict, optional): :class:`CRFParams` fields.
        crf_alpha (float): Weight of ``M_P`` for the CRF (0.7 in ``cam2ir``).
        weak_bg_scale (float): Background factor of the second CRF pass.
        bg_offset (float, optional): Background rule offset of the CRF
            input. fg_scale (float, optional): its foreground factor. Both
            default to None: the CAM model's ``test_cfg`` values, the single
            place they are set (as for :class:`SFCCAMMetric`); a value given
            here overrides it.
        nproc (int): CRF worker processes per rank.
        batch_size (int): Images of equal size inferred together (a GPU gains
            from it; sizes are read from the image headers).
        store_cams (bool): Write ``cams/``; False streams into the CRF.
        evaluate (bool): Score the CAMs and pseudo labels.
        eval_ann_file (str, optional): Split list (relative to the dataset's
            ``data_root``) restricting scoring, e.g. VOC ``train.txt`` when
            generating for ``train_aug``.
        show_dir (str, optional): Write CAM overlays and coloured pseudo labels
            of the first ``num_show`` images there.
        num_show (int): Images to visualise.
        walk (dict, optional): :class:`RandomWalkParams` fields of stage 3
            (:meth:`refine`).
        mask_dir (str): Subdirectory of ``out_dir`` for stage 3's masks.
        regions (dict, optional): Also snap the labels (and stage 3's masks)
            to class-agnostic regions, ``dict(type='slic' | 'felzenszwalb' |
            'sam' | 'folder', **kwargs)``, into ``labels_<type>/`` (and
            ``<mask_dir>_<type>/``), scored as ``pseudo_label_<type>`` (and
            ``mask_<type>``); see :mod:`mmsfc.engine.region_labels`. None
            (default): no refinement.
        region_rule (dict, optional): :class:`~mmsfc.postprocess.RegionRule`
            fields of that step.

    :meth:`refine` runs stage 3 (:class:`~mmsfc.engine.IRNMaskGenerator`) on
    the stored ``cams/`` with this generator's split and settings.
    """

    #: With ``store_cams``, run the CRF of each written CAM file while the next
    #: images are inferred (True) or all CAMs first, then the CRF (False); the
    #: files are the same. None (default): overlap unless the inference runs on
    #: a CPU with fewer cores than its threads plus the CRF processes, where
    #: both would contend for the cores (:meth:`_overlaps`).
    overlap_crf: Optional[bool] = None

    def __init__(self,
                 out_dir: str,
                 dataloader: dict,
                 cam_metric: Optional[dict] = dict(type='SFCCAMMetric'),
                 crf: Optional[dict] = None,
                 crf_alpha: float = 0.7,
                 weak_bg_scale: float = 0.5,
                 bg_offset: Optional[float] = None,
                 fg_scale: Optional[float] = None,
                 nproc: int = 1,
                 batch_size: int = 1,
                 store_cams: bool = True,
                 evaluate: bool = True,
                 eval_ann_file: Optional[str] = None,
                 show_dir: Optional[str] = None,
                 num_show: int = 20,
                 walk: Optional[dict] = None,
                 mask_dir: str = 'masks',
                 regions: Optional[dict] = None,
                 region_rule: Optional[dict] = None) -> None:
        self.out_dir = out_dir
        self.cam_dir = osp.join(out_dir, 'cams')
        self.label_dir = osp.join(out_dir, 'labels')
        self.dataloader_cfg = dict(dataloader)
        self.cam_metric_cfg = cam_metric
        self.crf_kwargs = dict(alpha=crf_alpha, weak_bg_scale=weak_bg_scale,
                               bg_offset=bg_offset, fg_scale=fg_scale,
                               params=CRFParams(**(crf or {})))
        self.nproc = max(int(nproc), 1)
        self.batch_size = max(int(batch_size), 1)
        self.store_cams = store_cams
        self.evaluate = evaluate
        self.eval_ann_file = eval_ann_file
        self.show_dir = show_dir
        self.num_show = num_show
        self.walk = walk
        self.mask_dir = osp.join(out_dir, mask_dir)
        self.image_flag = 'color'  # set from the dataset's pipeline by run()
        self.region_writer = None
        if regions:  # built now, so that a bad source fails before inference
            from .region_labels import RegionLabelWriter
            self.region_writer = RegionLabelWriter(regions, region_rule, self.nproc)

    # ----------------------------------------------------------------- helpers
    def _paths(self, img_id: str):
        return osp.join(self.cam_dir, img_id + '.npz'), osp.join(self.label_dir, img_id + '.png')

    def _build_dataset(self):
        dataset = self.dataloader_cfg['dataset']
        return DATASETS.build(dataset) if isinstance(dataset, dict) else dataset

    # --------------------------------------------------------------- stage run
    def run(self, model) -> Dict[str, float]:
        """Run inference, CRF and scoring; returns the metrics (all ranks)."""
        dataset = self._build_dataset()
        self.image_flag = image_flag(dataset)
        self._take_rule_from(model)
        palette = dataset.metainfo['palette']
        manifest = self._manifest(model, dataset)
        if is_main_process():
            remove_temporaries(self.cam_dir, self.label_dir)
            write_manifest(self.out_dir, manifest)
        barrier()  # no rank writes before the clean-up, all see the manifest
        check_manifest(self.out_dir, manifest, 'outputs of another model or settings')
        ids = image_ids(dataset)
        scored = set(eval_indices(dataset, ids, self.eval_ann_file)) if self.evaluate else set()
        # Each rank infers and labels its own share, so no rank waits for another
        # rank's files until scoring.
        output = 0 if self.store_cams else 1
        is_done = is_valid_cam_file if self.store_cams else is_valid_label_png
        todo = [i for i in my_share(range(len(ids)))
                if not is_done(self._paths(ids[i])[output])]
        print_log(f'pseudo labels: {len(ids)} images, {len(todo)} to infer on this rank',
                  logger='current')
        streamed_metrics = self._infer(model, dataset, todo, palette, scored)
        if self.store_cams:
            self._run_crf(dataset, ids, palette)
        barrier()  # all ranks' files exist before scoring
        metrics = dict(streamed_metrics)
        if self.evaluate:
            metrics.update(self._score(dataset, ids, sorted(scored)))
        if self.region_writer is not None:
            metrics.update(self.region_writer.run(
                self, dataset, ids, self.label_dir, osp.join(self.out_dir, 'manifest.json'),
                palette, 'pseudo_label'))
        if self.show_dir and is_main_process():
            self._visualize(dataset, ids)
        return metrics

    def _take_rule_from(self, model) -> None:
        """Fill ``bg_offset`` / ``fg_scale`` left None from the model's ``test_cfg``."""
        module = model.module if is_model_wrapper(model) else model
        test_cfg = getattr(module, 'test_cfg', None) or {}
        self.model_rule = {k: test_cfg[k] for k in ('alpha', 'bg_offset', 'fg_scale')
                           if k in test_cfg}
        for name in ('bg_offset', 'fg_scale'):
            if self.crf_kwargs[name] is None:
                if name not in self.model_rule:
                    raise ValueError(f'PseudoLabelGenerator: {name} is not set and the model '
                                     f'has no test_cfg.{name}')
                self.crf_kwargs[name] = self.model_rule[name]

    # ---------------------------------------------------------------- manifest
    def _manifest(self, model, dataset) -> dict:
        """What decides the outputs: model weights and test settings, CRF, classes."""
        crf = {k: (asdict(v) if k == 'params' else v) for k, v in self.crf_kwargs.items()}
        return dict(model_manifest(model, dataset), crf=crf)

    @torch.no_grad()
    def _infer(self, model, dataset, todo: List[int], palette,
               eval_indices: Set[int] = frozenset()) -> Dict[str, float]:
        """Multi-scale CAMs of ``todo`` (this rank's share): files or streamed CRF.

        In streamed mode the CAMs of the images in ``eval_indices`` are scored
        on the fly; that covers only the images inferred in this run.
        """
        module = model.module if is_model_wrapper(model) else model
        was_training = module.training
        module.eval()
        loader = []
        if todo:  # already this rank's share: no sampler sharding
            loader = subset_loader(dataset, todo, self.batch_size, self.image_flag,
                                   self.dataloader_cfg.get('num_workers', 0))
        evaluator = None
        if not self.store_cams and self.evaluate and self.cam_metric_cfg:
            evaluator = Evaluator(dict(self.cam_metric_cfg, prefix='cam'))
            evaluator.dataset_meta = dataset.metainfo
        with ExitStack() as stack:
            pool = None
            if not self.store_cams:
                pool = stack.enter_context(Pool(self.nproc))
            elif todo and self._overlaps(module):
                # the CRF of each written CAM file runs while the next images are
                # inferred; one worker is a thread (writes stay in this process)
                pool = stack.enter_context(ThreadPool(1) if self.nproc == 1
                                           else Pool(self.nproc))
            num_scored = self._infer_loop(model, loader, pool, evaluator, palette,
                                          [i in eval_indices for i in todo])
        module.train(was_training)
        if evaluator is None:
            return {}
        num_scored = torch.tensor(num_scored)
        all_reduce(num_scored)
        print_log(f'streamed CAM scores cover the {int(num_scored)} images inferred in this run',
                  logger='current')
        return evaluator.evaluate(int(num_scored)) if num_scored > 0 else {}

    def _overlaps(self, module) -> bool:
        """Whether the CRF runs during the inference (see :attr:`overlap_crf`)."""
        if self.overlap_crf is not None:
            return self.overlap_crf
        param = next(module.parameters(), None)
        if param is not None and param.device.type != 'cpu':
            return True
        return usable_cores() >= torch.get_num_threads() + self.nproc

    def _infer_loop(self, model, loader, pool: Optional[Pool], evaluator: Optional[Evaluator],
                    palette, to_score: List[bool]) -> int:
        """Write each image's CAMs, or hand them to ``pool`` for the CRF.

        ``to_score[j]`` says whether image ``j`` of the loader's dataset goes
        to ``evaluator``; returns how many did.
        """
        pending = []
        num_scored = 0
        progress = ProgressBar(len(loader)) if is_main_process() and len(loader) else None
        for batch_indices, data in zip(loader.batch_sampler if loader else [], loader):
            for subset_index, sample in zip(batch_indices, model.test_step(data)):
                image_id = img_id(sample.metainfo)
                keys = _present_keys(sample.metainfo['cls_label'])
                cam_w = sample.cam_w.data[keys].float().cpu().numpy()
                cam_p = sample.cam_p.data[keys].float().cpu().numpy()
                cam_path, png_path = self._paths(image_id)
                if self.store_cams:
                    save_cams(cam_path, keys, cam_w, cam_p)
                    if pool is not None:  # the same job as _run_crf's, on the written file
                        pending.append(pool.apply_async(_crf_task, ((
                            sample.img_path, self.image_flag, cam_path, png_path,
                            self.crf_kwargs, palette),)))
                else:
                    # the precision of the stored files, so both paths give the same labels
                    cam_w, cam_p = as_stored_cam(cam_w), as_stored_cam(cam_p)
                    pending.append(pool.apply_async(
                        _label_image, (sample.img_path, self.image_flag, keys, cam_w, cam_p,
                                       png_path, self.crf_kwargs, palette)))
                if len(pending) > 2 * self.nproc:
                    pending.pop(0).get()
                if evaluator is not None and to_score[subset_index]:
                    subset = loader.dataset
                    sample.gt_sem_seg = PixelData(data=load_gt(
                        subset.dataset.get_data_info(subset.indices[subset_index]),
                        len(subset.dataset.metainfo['classes'])))
                    evaluator.process([sample])
                    num_scored += 1
            if progress is not None:
                progress.update()
        for job in pending:
            job.get()
        return num_scored

    def _run_crf(self, dataset, ids: List[str], palette) -> None:
        """Two-pass CRF of this rank's share of the images, ``nproc`` processes."""
        tasks = []
        for idx in my_share(range(len(ids))):
            cam_path, png_path = self._paths(ids[idx])
            if not is_valid_label_png(png_path):
                tasks.append((dataset.get_data_info(idx)['img_path'], self.image_flag, cam_path,
                              png_path, self.crf_kwargs, palette))
        print_log(f'CRF: {len(tasks)} images on this rank with {self.nproc} process(es)',
                  logger='current')
        if not tasks:
            return
        if self.nproc > 1:
            track_parallel_progress(_crf_task, tasks, self.nproc)
        else:
            track_progress(_crf_task, tasks)

    def _score(self, dataset, ids: List[str], indices: List[int]) -> Dict[str, float]:
        """CAM and pseudo-label mIoU from the files, sharded over ranks."""
        with_cams = self.store_cams and self.cam_metric_cfg
        num_classes = len(dataset.metainfo['classes'])

        def add_cams(sample: SegDataSample, image_id: str) -> None:
            keys, cam_w, cam_p = load_cams(self._paths(image_id)[0])
            for name, cam in (('cam_w', cam_w), ('cam_p', cam_p)):
                full = torch.zeros(num_classes, *cam.shape[1:])
                full[torch.from_numpy(keys)] = torch.from_numpy(cam)
                sample.set_field(PixelData(data=full), name)

        return score_label_files(
            dataset, ids, indices, lambda image_id: self._paths(image_id)[1],
            prefix='pseudo_label',
            extra_metrics=[dict(self.cam_metric_cfg, prefix='cam')] if with_cams else (),
            add_fields=add_cams if with_cams else None,
            metainfo=dict(cam_rule=self.model_rule))

    def _visualize(self, dataset, ids: List[str]) -> None:
        """CAM heat maps and coloured pseudo labels of the first images."""
        visualizer = VISUALIZERS.build(dict(type='SegLocalVisualizer', name='sfc_pseudo_labels',
                                            save_dir=self.show_dir))
        visualizer.dataset_meta = dataset.metainfo
        for idx in range(min(self.num_show, len(ids))):
            cam_path, png_path = self._paths(ids[idx])
            if not is_valid_label_png(png_path):
                continue
            image = read_rgb(dataset.get_data_info(idx)['img_path'], self.image_flag)
            label = load_label_png(png_path)
            sample = SegDataSample()
            sample.pred_sem_seg = PixelData(data=torch.from_numpy(label.astype(np.int64))[None])
            visualizer.add_datasample(ids[idx], image, sample, draw_gt=False, show=False,
                                      out_file=osp.join(self.show_dir, ids[idx] + '_label.png'))
            if is_valid_cam_file(cam_path):
                _, cam_w, cam_p = load_cams(cam_path)
                heat = torch.from_numpy((cam_w[1:] + cam_p[1:]).max(axis=0, keepdims=True))
                overlay = visualizer.draw_featmap(heat, image, channel_reduction='select_max')
                mmcv.imwrite(mmcv.rgb2bgr(overlay), osp.join(self.show_dir, ids[idx] + '_cam.png'))

    # ------------------------------------------------------- stage 3 (IRN)
    def refine(self, irn_model) -> Dict[str, float]:
        """Stage 3 on this generator's ``cams/``: :meth:`IRNMaskGenerator.run`.

        Needs the ``cams/`` of :meth:`run` (``store_cams=True``); writes
        ``<mask_dir>/<id>.png`` and returns their scores (``mask`` prefix).
        """
        stage3 = IRNMaskGenerator(
            self.out_dir, self.dataloader_cfg, walk=self.walk,
            mask_dir=osp.relpath(self.mask_dir, self.out_dir), batch_size=self.batch_size,
            evaluate=self.evaluate, eval_ann_file=self.eval_ann_file)
        metrics = stage3.run(irn_model)
        if self.region_writer is not None:
            dataset = self._build_dataset()
            self.image_flag = image_flag(dataset)
            metrics.update(self.region_writer.run(
                self, dataset, image_ids(dataset), self.mask_dir,
                osp.join(self.mask_dir, 'manifest.json'), dataset.metainfo['palette'], 'mask'))
        return metrics
