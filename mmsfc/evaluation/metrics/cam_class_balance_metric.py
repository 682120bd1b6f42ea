# Copyright (c) mmsfc contributors. All rights reserved.
from collections import OrderedDict
from typing import Dict, Sequence

import numpy as np
import torch
from mmseg.registry import METRICS

from mmsfc.postprocess import channel_argmax

from .sfc_cam_metric import SFCCAMMetric


@METRICS.register_module()
class SFCClassBalanceMetric(SFCCAMMetric):
    """:class:`SFCCAMMetric` plus per-class IoU and how much head classes claim of the tail.

    The effect SFC is about (paper, "Analysis on SFC"): with features shared
    between classes and a long-tailed training set, the classifier CAM of a
    head class spreads over the shared parts of tail-class objects. Besides
    the mIoU of every map, this metric reports for each map ``m`` of ``maps``:

    - ``IoU_<m>.<class>``: the IoU of every class (background included);
    - ``head_claim_<m>``: the share of ground-truth pixels of the
      ``tail_classes`` that the map assigns to one of the ``head_classes``,
      ``|{x : gt(x) in tail, pred(x) in head}| / |{x : gt(x) in tail}|``
      (over all images; lower is better, 0 when no tail pixel exists);
    - ``head_precision_<m>``: the share of the pixels predicted as a head class
      that belong to that class (how much the head classes over-activate,
      onto other objects or the background; higher is better).

    Args:
        head_classes (Sequence[str]): Names of the head classes.
        tail_classes (Sequence[str]): Names of the tail classes.
        **kwargs: :class:`SFCCAMMetric` arguments.
    """

    def __init__(self, head_classes: Sequence[str] = (), tail_classes: Sequence[str] = (),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.head_classes = tuple(head_classes)
        self.tail_classes = tuple(tail_classes)

    def _indices(self, names: Sequence[str]) -> torch.Tensor:
        classes = list(self.dataset_meta['classes'])
        unknown = [name for name in names if name not in classes]
        if unknown:
            raise ValueError(f'{type(self).__name__}: classes {unknown} are not in the '
                             f'dataset classes {classes}')
        return torch.tensor([classes.index(name) for name in names], dtype=torch.long)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Also count, per map, the tail pixels predicted as a head class."""
        super().process(data_batch, data_samples)
        if self.format_only:
            return
        head, tail = self._indices(self.head_classes), self._indices(self.tail_classes)
        for sample, areas in zip(data_samples, self.results[-len(data_samples):]):
            cam_w, cam_p = sample['cam_w']['data'], sample['cam_p']['data']
            label = sample['gt_sem_seg']['data'][0].to(cam_w.device)
            in_tail = torch.isin(label, tail.to(label.device))
            rule = self._rule(sample)  # alpha, bg_offset, fg_scale (the model's by default)
            for name in self.maps:
                pred = channel_argmax(self._scores(cam_w, cam_p, name, *rule))
                claimed = in_tail & torch.isin(pred, head.to(pred.device))
                areas[f'claim_{name}'] = (int(claimed.sum()), int(in_tail.sum()))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = OrderedDict(super().compute_metrics(results))
        classes = self.dataset_meta['classes']
        for name in self.maps:
            intersect, union, pred_area, label_area = (
                sum(r[name][i] for r in results) for i in range(4))
            ious = self.total_area_to_metrics(intersect, union, pred_area, label_area,
                                              ['mIoU'], self.nan_to_num)['IoU']
            head = self._indices(self.head_classes).numpy()
            predicted = float(pred_area[head].sum())
            metrics[f'head_precision_{name}'] = float(
                np.round(100 * float(intersect[head].sum()) / predicted, 2)) if predicted else 0.0
            for cls, iou in zip(classes, ious):
                metrics[f'IoU_{name}.{cls}'] = float(np.round(iou * 100, 2))
            claimed = sum(r[f'claim_{name}'][0] for r in results)
            tail_pixels = sum(r[f'claim_{name}'][1] for r in results)
            metrics[f'head_claim_{name}'] = float(
                np.round(100 * claimed / tail_pixels, 2)) if tail_pixels else 0.0
        return dict(metrics)
