# Copyright (c) mmsfc contributors. All rights reserved.
"""Score stored pseudo labels against their region-refined versions, offline.

For each folder of label PNGs (stage 2's ``labels/``, stage 3's ``masks/``)
and each region source, refines every image with
:func:`~mmsfc.postprocess.refine_with_regions` (in memory, nothing written)
and reports, against the ground-truth masks, the mIoU (255 counted as
background, as the pipeline scores labels), the boundary mIoU (the IoU
restricted to pixels within ``--boundary-width`` pixels of a ground-truth
edge) and the seconds per image (regions, and the rule). Scores use mmseg's
``IoUMetric`` machinery. Writes ``region_refinement.json`` and ``.md``.

Example (on a run's outputs; the ids of the scored split)::

    python tools/analysis/eval_region_refinement.py \\
        work_dirs/pseudo/labels work_dirs/pseudo/masks \\
        --img-dir data/VOCdevkit/VOC2012/JPEGImages \\
        --gt-dir data/VOCdevkit/VOC2012/SegmentationClass \\
        --ids data/VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt \\
        --regions slic felzenszwalb --out-dir work_dirs/region_eval
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmcv import imread
from mmengine.config import DictAction
from mmseg.evaluation.metrics import IoUMetric
from scipy import ndimage

from mmsfc.postprocess import (
    UNCERTAIN,
    RegionRule,
    build_region_source,
    load_label_png,
    refine_with_regions,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('label_dirs', nargs='+', help='folders of <id>.png labels')
    parser.add_argument('--img-dir', required=True, help='images <id><img-suffix>')
    parser.add_argument('--img-suffix', default='.jpg')
    parser.add_argument('--gt-dir', required=True, help='ground truth <id>.png (255 ignored)')
    parser.add_argument('--ids', help='text file of the image ids to score (default: all '
                        'labels with a ground-truth mask)')
    parser.add_argument('--regions', nargs='+', default=['slic', 'felzenszwalb'],
                        help='region source types (sam needs --region-options checkpoint=...)')
    parser.add_argument('--region-options', nargs='+', action=DictAction, default={},
                        help='arguments of every region source, e.g. n_segments=300')
    parser.add_argument('--majority', type=float, default=0.5)
    parser.add_argument('--coverage', type=float, default=0.85)
    parser.add_argument('--boundary-width', type=int, default=3,
                        help='pixels either side of a ground-truth edge in the boundary mIoU')
    parser.add_argument('--num-classes', type=int, help='default: from the masks and labels')
    parser.add_argument('--out-dir', required=True)
    return parser.parse_args(argv)


def edge_band(gt: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of a ground-truth edge (a change of value, 255 included)."""
    edge = np.zeros(gt.shape, bool)
    edge[:, 1:] |= gt[:, 1:] != gt[:, :-1]
    edge[:, :-1] |= gt[:, 1:] != gt[:, :-1]
    edge[1:] |= gt[1:] != gt[:-1]
    edge[:-1] |= gt[1:] != gt[:-1]
    if width > 1:
        edge = ndimage.binary_dilation(edge, iterations=width - 1)
    return edge


class Scores:
    """mIoU and boundary mIoU accumulated with ``IoUMetric.intersect_and_union``."""

    def __init__(self, num_classes: int, width: int):
        self.num_classes, self.width = num_classes, width
        self.areas: Dict[str, list] = {}

    def add(self, label: np.ndarray, gt: np.ndarray) -> None:
        pred = label.astype(np.int64)
        pred[pred == UNCERTAIN] = 0
        band_gt = np.where(edge_band(gt, self.width), gt, UNCERTAIN)
        for name, truth in (('all', gt), ('boundary', band_gt)):
            areas = IoUMetric.intersect_and_union(
                torch.from_numpy(pred), torch.from_numpy(truth.astype(np.int64)),
                self.num_classes, UNCERTAIN)
            old = self.areas.get(name)
            self.areas[name] = areas if old is None else [a + b for a, b in zip(old, areas)]

    def result(self) -> dict:
        out = {}
        for name, key in (('all', 'mIoU'), ('boundary', 'boundary_mIoU')):
            iou = IoUMetric.total_area_to_metrics(*self.areas[name], metrics=['mIoU'])['IoU']
            out[key] = float(np.nanmean(np.asarray(iou, np.float64)) * 100)
        return out


def evaluate(args) -> dict:
    rule = RegionRule(majority=args.majority, coverage=args.coverage)
    sources = {kind: build_region_source(dict(type=kind, **args.region_options))
               for kind in args.regions}
    wanted = None
    if args.ids:
        with open(args.ids) as f:
            wanted = {line.strip() for line in f if line.strip()}
    rows = []
    for label_dir in args.label_dirs:
        ids = sorted(name[:-4] for name in os.listdir(label_dir) if name.endswith('.png'))
        ids = [i for i in ids if (wanted is None or i in wanted)
               and osp.isfile(osp.join(args.gt_dir, i + '.png'))]
        if not ids:
            raise SystemExit(f'error: no label in {label_dir} has a ground-truth mask in '
                             f'{args.gt_dir}')
        labels = {i: load_label_png(osp.join(label_dir, i + '.png')) for i in ids}
        gts = {i: load_label_png(osp.join(args.gt_dir, i + '.png')) for i in ids}
        num_classes = args.num_classes or 1 + max(
            int(a[a != UNCERTAIN].max(initial=0)) for a in (*labels.values(), *gts.values()))
        plain = Scores(num_classes, args.boundary_width)
        for i in ids:
            plain.add(labels[i], gts[i])
        name = osp.basename(osp.normpath(label_dir))
        rows.append(dict(labels=name, regions='none', images=len(ids), **plain.result()))
        for kind, source in sources.items():
            scores = Scores(num_classes, args.boundary_width)
            region_s = rule_s = 0.0
            for i in ids:
                image = imread(osp.join(args.img_dir, i + args.img_suffix), channel_order='rgb')
                if image is None:
                    raise SystemExit(f'error: cannot read {osp.join(args.img_dir, i)}')
                start = time.perf_counter()
                regions = source(image, i)
                middle = time.perf_counter()
                refined = refine_with_regions(labels[i], regions, rule)
                rule_s += time.perf_counter() - middle
                region_s += middle - start
                scores.add(refined, gts[i])
            rows.append(dict(labels=name, regions=kind, images=len(ids), **scores.result(),
                             regions_s_per_image=region_s / len(ids),
                             rule_s_per_image=rule_s / len(ids)))
    return dict(rule=vars(rule), boundary_width=args.boundary_width,
                region_options=dict(args.region_options), rows=rows)


def markdown(result: dict) -> str:
    lines = [f'Rule: {result["rule"]}; boundary band ±{result["boundary_width"]} px.', '',
             '| labels | regions | images | mIoU (%) | boundary mIoU (%) | s/image (regions '
             '+ rule) |', '|---|---|---|---|---|---|']
    for row in result['rows']:
        time_cell = ('-' if row['regions'] == 'none' else
                     f'{row["regions_s_per_image"]:.3f} + {row["rule_s_per_image"]:.3f}')
        lines.append(f'| {row["labels"]} | {row["regions"]} | {row["images"]} | '
                     f'{row["mIoU"]:.2f} | {row["boundary_mIoU"]:.2f} | {time_cell} |')
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    result = evaluate(args)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'region_refinement.json'), 'w') as f:
        json.dump(result, f, indent=1)
    table = markdown(result)
    with open(osp.join(args.out_dir, 'region_refinement.md'), 'w') as f:
        f.write(table)
    print(table)
    return result


if __name__ == '__main__':
    main()
