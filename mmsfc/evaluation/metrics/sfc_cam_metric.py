# Copyright (c) mmsfc contributors. All rights reserved.
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from torch import Tensor

from mmsfc.models.utils import background_rule
from mmsfc.postprocess import save_label_png

_MAPS = ('final', 'w', 'p')


@METRICS.register_module()
class SFCCAMMetric(IoUMetric):
    """mIoU of SFC CAMs: ``M_W``, ``M_P`` and ``M_final`` in one pass.

    Reads the ``cam_w`` / ``cam_p`` fields that :class:`SFCClassifier.predict`
    stores (max-normalised, zero for absent classes) and scores, with mmseg's
    :class:`IoUMetric` machinery, the argmax under the authors' background
    rule (reference §6.3: background + ``bg_offset``, foreground × ``fg_scale``)
    of

    - ``'final'``: ``M_W' + alpha * M_P'`` (paper Eq. 9 with ``alpha = 1``),
    - ``'w'``: ``M_W'``, and ``'p'``: ``M_P'`` (paper Table 6).

    Optionally sweeps a constant background score ``t`` over
    ``bg_thresholds`` on the convex mix ``(M_W + alpha * M_P) / (1 + alpha)``
    and reports the best ``t``. That number is **selected with ground truth**
    and is reported under a key saying so; the paper's number uses the
    model's own background channel.

    The headline ``mIoU`` (and ``aAcc`` and the per-class table) is the map
    the model predicted with (``model.test_cfg.inference_map``): the metric
    identifies it by comparing each sample's ``seg_logits`` with the maps it
    computes, so ``--cfg-options model.test_cfg.inference_map=w`` alone makes
    ``mIoU`` the mIoU of ``M_W'``. ``seg_logits`` that match none of the maps
    (``alpha``, ``bg_offset`` or ``fg_scale`` differ from the model's) raise
    an error. Samples without ``seg_logits`` (CAMs read back from files) use
    the first of ``maps``.

    Returned keys: ``mIoU`` (the headline map, for ``save_best``),
    ``mIoU_<map>`` for each map, ``mIoU_w_plus_p`` (``mIoU_w +
    mIoU_p``, the authors' criterion for their GT-selected checkpoint, when
    both are scored), ``aAcc``; with a sweep, ``best_bg_threshold_gt_selected``
    and ``mIoU_best_bg_threshold_gt_selected``.

    Args:
        maps (Sequence[str]): Maps to score, from ``'final'``, ``'w'``, ``'p'``.
        alpha (float): Weight of ``M_P`` in ``'final'``.
        bg_offset (float): Background offset of the background rule.
        fg_scale (float): Foreground factor of the background rule.
        bg_thresholds (Sequence[float], optional): Thresholds to sweep.
        **kwargs: Passed to :class:`mmseg.evaluation.IoUMetric`.
    """

    def __init__(self,
                 maps: Sequence[str] = _MAPS,
                 alpha: float = 1.0,
                 bg_offset: float = 0.4,
                 fg_scale: float = 2.0,
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

    def _scores(self, cam_w: Tensor, cam_p: Tensor, name: str) -> Tensor:
        rule = background_rule
        if name == 'w':
            return rule(cam_w, self.bg_offset, self.fg_scale)
        if name == 'p':
            return rule(cam_p, self.bg_offset, self.fg_scale)
        return (rule(cam_w, self.bg_offset, self.fg_scale) +
                self.alpha * rule(cam_p, self.bg_offset, self.fg_scale))

    def _headline_map(self, sample: dict, cam_w: Tensor, cam_p: Tensor) -> str:
        """The map behind ``sample['seg_logits']``, else the first of ``maps``."""
        if 'seg_logits' not in sample:
            return self.maps[0]
        logits = sample['seg_logits']['data']
        for name in self.maps + tuple(m for m in _MAPS if m not in self.maps):
            scores = self._scores(cam_w, cam_p, name)
            if scores.shape == logits.shape and torch.allclose(scores, logits.to(scores),
                                                               rtol=1e-5, atol=1e-6):
                return name
        raise ValueError(
            f"SFCCAMMetric: the model's seg_logits of {sample.get('img_path', 'a sample')} "
            f'match none of the maps {_MAPS} computed with alpha={self.alpha}, '
            f'bg_offset={self.bg_offset}, fg_scale={self.fg_scale}; set the metric to the '
            "model's test_cfg values")

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
            headline = self._headline_map(sample, cam_w, cam_p)
            areas = {'headline': headline}
            for name in dict.fromkeys((headline, ) + self.maps):
                pred = self._scores(cam_w, cam_p, name).argmax(dim=0)
                areas[name] = self.intersect_and_union(pred, label, num_classes,
                                                       self.ignore_index)
            if self.bg_thresholds:
                mix = (cam_w + self.alpha * cam_p) / (1 + self.alpha)
                for threshold in self.bg_thresholds:
                    scores = mix.clone()
                    scores[0] = threshold
                    # absent classes are zero and lose to any threshold > 0
                    areas[threshold] = self.intersect_and_union(
                        scores.argmax(dim=0), label, num_classes, self.ignore_index)
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
            metrics['mIoU_w_plus_p'] = round(metrics['mIoU_w'] + metrics['mIoU_p'],
                                                         2)
        if self.bg_thresholds:
            sweep = {t: self._miou([r[t] for r in results]) for t in self.bg_thresholds}
            best = max(sweep, key=sweep.get)
            metrics['best_bg_threshold_gt_selected'] = best
            metrics['mIoU_best_bg_threshold_gt_selected'] = sweep[best]
            print_log('background-threshold sweep (selected with ground truth): ' +
                      ', '.join(f'{t:g}: {v:.2f}' for t, v in sweep.items()), logger)
        return dict(metrics)

