# Copyright (c) mmsfc contributors. All rights reserved.
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from torch import Tensor

from mmsfc.postprocess import background_rule, channel_argmax, save_label_png

_MAPS = ('final', 'w', 'p')


@METRICS.register_module()
class SFCCAMMetric(IoUMetric):
    """mIoU of SFC CAMs: ``M_W``, ``M_P`` and ``M_final`` in one pass.

    Reads the ``cam_w`` / ``cam_p`` fields that :class:`SFCClassifier.predict`
    stores (max-normalised, zero for absent classes) and scores, with mmseg's
    :class:`IoUMetric` machinery, the argmax under the authors' background
    rule (docs/method_notes.md §12: background + ``bg_offset``, foreground × ``fg_scale``)
    of

    - ``'final'``: ``M_W' + alpha * M_P'`` (paper Eq. 9 with ``alpha = 1``),
    - ``'w'``: ``M_W'``, and ``'p'``: ``M_P'`` (paper Table 6).

    Optionally sweeps a constant background score ``t`` over
    ``bg_thresholds`` on the convex mix ``(M_W + alpha * M_P) / (1 + alpha)``
    and reports the best ``t``. That number is **selected with ground truth**
    and is reported under a key saying so; the paper's number uses the
    model's own background channel.

    ``alpha``, ``bg_offset`` and ``fg_scale`` are set in one place, the CAM
    model's ``test_cfg``: left None here, they are read from the ``cam_rule``
    that :class:`SFCClassifier` stores in each prediction's metainfo, so the
    metric scores with the rule the model predicts with. A value given here
    overrides it (e.g. to score ``M_final`` with another ``alpha``).

    The headline ``mIoU`` (and ``aAcc`` and the per-class table) is the map
    the model predicted with (``model.test_cfg.inference_map``): the metric
    identifies it by comparing each sample's ``seg_logits`` with the maps
    computed under the model's rule (its ``cam_rule``), so ``--cfg-options
    model.test_cfg.inference_map=w`` alone makes ``mIoU`` the mIoU of
    ``M_W'``; that map is then scored with the metric's rule. ``seg_logits``
    that match none of the maps raise an error. Samples without
    ``seg_logits`` (CAMs read back from files) use the first of ``maps``.

    Returned keys: ``mIoU`` (the headline map, for ``save_best``),
    ``mIoU_<map>`` for each map, ``mIoU_w_plus_p`` (``mIoU_w +
    mIoU_p``, the authors' criterion for their GT-selected checkpoint, when
    both are scored), ``aAcc``; with a sweep, ``best_bg_threshold_gt_selected``
    and ``mIoU_best_bg_threshold_gt_selected``.

    Args:
        maps (Sequence[str]): Maps to score, from ``'final'``, ``'w'``, ``'p'``.
        alpha (float, optional): Weight of ``M_P`` in ``'final'``. Defaults
            to None (the model's ``test_cfg.alpha``).
        bg_offset (float, optional): Background offset of the background
            rule. Defaults to None (the model's).
        fg_scale (float, optional): Foreground factor of the background
            rule. Defaults to None (the model's).
        bg_thresholds (Sequence[float], optional): Thresholds to sweep.
        **kwargs: Passed to :class:`mmseg.evaluation.IoUMetric`.
    """

    def __init__(self,
                 maps: Sequence[str] = _MAPS,
                 alpha: Optional[float] = None,
                 bg_offset: Optional[float] = None,
                 fg_scale: Optional[float] = None,
                 bg_thresholds: Optional[Sequence[float]] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        unknown = set(maps) - set(_MAPS)
        if unknown or not maps:
            raise ValueError(f'maps must be a non-empty subset of {_MAPS}, got {maps}')
        self.maps = tuple(maps)
        self.alpha = alpha
        self.bg_offset = bg_offset
        self.fg_scale = fg_scale
        self.bg_thresholds = tuple(bg_thresholds or ())

    def _rule(self, sample: dict) -> Tuple[float, float, float]:
        """``(alpha, bg_offset, fg_scale)``: the metric's own, else the sample's ``cam_rule``."""
        model_rule = sample.get('cam_rule') or {}
        values = []
        for name in ('alpha', 'bg_offset', 'fg_scale'):
            value = getattr(self, name)
            value = model_rule.get(name) if value is None else value
            if value is None:
                raise ValueError(f'SFCCAMMetric: {name} is not set and the prediction of '
                                 f'{sample.get("img_path")} carries no cam_rule (set it in the '
                                 "metric or predict with SFCClassifier)")
            values.append(float(value))
        return tuple(values)

    @staticmethod
    def _scores(cam_w: Tensor, cam_p: Tensor, name: str, alpha: float, bg_offset: float,
                fg_scale: float) -> Tensor:
        if name == 'w':
            return background_rule(cam_w, bg_offset, fg_scale)
        if name == 'p':
            return background_rule(cam_p, bg_offset, fg_scale)
        return (background_rule(cam_w, bg_offset, fg_scale) +
                alpha * background_rule(cam_p, bg_offset, fg_scale))

    def _headline_map(self, sample: dict, cam_w: Tensor, cam_p: Tensor,
                      rule: Tuple[float, float, float]) -> str:
        """The map behind ``sample['seg_logits']``, else the first of ``maps``.

        The maps are computed with the model's ``cam_rule`` where the sample
        carries one (so a metric ``alpha`` overriding the model's does not
        hide the map), else with ``rule``, the metric's.
        """
        if 'seg_logits' not in sample:
            return self.maps[0]
        model_rule = sample.get('cam_rule') or {}
        model_rule = tuple(float(model_rule.get(name, value)) for name, value in
                           zip(('alpha', 'bg_offset', 'fg_scale'), rule))
        logits = sample['seg_logits']['data']
        for name in self.maps + tuple(m for m in _MAPS if m not in self.maps):
            scores = self._scores(cam_w, cam_p, name, *model_rule)
            if scores.shape == logits.shape and torch.allclose(scores, logits.to(scores),
                                                               rtol=1e-5, atol=1e-6):
                return name
        alpha, bg_offset, fg_scale = model_rule
        raise ValueError(
            f"SFCCAMMetric: the model's seg_logits of {sample.get('img_path', 'a sample')} "
            f'match none of the maps {_MAPS} computed with alpha={alpha}, '
            f'bg_offset={bg_offset}, fg_scale={fg_scale}; predict with SFCClassifier (its '
            "predictions carry the rule of its test_cfg) or set the metric to the model's values")

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Accumulate intersections and unions of every map and threshold.

        With ``output_dir`` (``tools/test.py --out``) the predicted labels
        (``pred_sem_seg``) are also written there as palette PNGs.
        """
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            if self.output_dir is not None:
                name = osp.splitext(osp.basename(sample['img_path']))[0] + '.png'
                save_label_png(osp.join(self.output_dir, name),
                               sample['pred_sem_seg']['data'][0].cpu().numpy(),
                               self.dataset_meta['palette'])
            if self.format_only:
                continue
            cam_w, cam_p = sample['cam_w']['data'], sample['cam_p']['data']
            label = sample['gt_sem_seg']['data'][0].to(cam_w.device)
            rule = self._rule(sample)
            headline = self._headline_map(sample, cam_w, cam_p, rule)
            areas = {'headline': headline}
            for name in dict.fromkeys((headline, ) + self.maps):
                pred = channel_argmax(self._scores(cam_w, cam_p, name, *rule))
                areas[name] = self.intersect_and_union(pred, label, num_classes,
                                                       self.ignore_index)
            if self.bg_thresholds:
                alpha = rule[0]
                mix = (cam_w + alpha * cam_p) / (1 + alpha)
                for threshold in self.bg_thresholds:
                    scores = mix.clone()
                    scores[0] = threshold
                    # absent classes are zero and lose to any threshold > 0
                    areas[threshold] = self.intersect_and_union(
                        channel_argmax(scores), label, num_classes, self.ignore_index)
            self.results.append(areas)

    def _miou(self, areas: list) -> float:
        intersect, union, pred_area, label_area = (sum(a[i] for a in areas) for i in range(4))
        ious = self.total_area_to_metrics(intersect, union, pred_area, label_area, ['mIoU'],
                                          self.nan_to_num)['IoU']
        return float(np.round(np.nanmean(ious) * 100, 2))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """mIoU of each map (per-class table of the first) and the sweep."""
        logger = MMLogger.get_current_instance()
        headlines = sorted({r['headline'] for r in results})
        if len(headlines) != 1:
            raise ValueError(f'SFCCAMMetric: samples were predicted with different maps '
                             f'{headlines}')
        headline = headlines[0]
        print_log(f'CAM map {headline!r} (mIoU):', logger)
        metrics = OrderedDict(super().compute_metrics([r[headline] for r in results]))
        for name in self.maps:
            metrics[f'mIoU_{name}'] = self._miou([r[name] for r in results])
        if 'w' in self.maps and 'p' in self.maps:
            metrics['mIoU_w_plus_p'] = round(metrics['mIoU_w'] + metrics['mIoU_p'], 2)
        if self.bg_thresholds:
            sweep = {t: self._miou([r[t] for r in results]) for t in self.bg_thresholds}
            best = max(sweep, key=sweep.get)
            metrics['best_bg_threshold_gt_selected'] = best
            metrics['mIoU_best_bg_threshold_gt_selected'] = sweep[best]
            print_log('background-threshold sweep (selected with ground truth): ' +
                      ', '.join(f'{t:g}: {v:.2f}' for t, v in sweep.items()), logger)
        return dict(metrics)

