# Copyright (c) mmsfc contributors. All rights reserved.
"""Score the CAM → label rule over a grid of its parameters, from stored CAMs.

Answers "which background threshold?" without running inference again: the
CAM files of stage 2 (``<out_dir>/cams/<id>.npz``, see
:mod:`mmsfc.postprocess.files`) are turned into labels with every setting of
the background rule ``M' = [M_bg + bg_offset, fg_scale * M_c]`` on
``M_W' + alpha * M_P'`` (an argmax, no CRF), and optionally with every
setting of the two-pass CRF (``--crf``; its ``alpha``, rule and
:class:`~mmsfc.postprocess.CRFParams` fields), and each setting is scored
with mmseg's ``IoUMetric`` machinery against the ground-truth masks (CRF
labels with 255 counted as background, as the pipeline scores them).

The best setting is chosen **with the ground truth**: report it as
GT-selected (the outputs say so). Outputs in ``--out-dir``:
``sweep.json`` (every setting, mIoU and per-class IoU), ``sweep.md`` (a
table) and ``sweep.png`` (mIoU against ``bg_offset``).

Example::

    python tools/analysis/sweep_cam_rule.py work_dirs/pseudo/cams \\
        --gt-dir data/VOCdevkit/VOC2012/SegmentationClass --out-dir work_dirs/sweep \\
        --bg-offsets 0.2 0.3 0.4 0.5 0.6 --fg-scales 1 2 3 --alphas 0 0.3 0.7 1
    # the CRF too (needs the images; slow: two CRF passes per image and setting)
    python tools/analysis/sweep_cam_rule.py work_dirs/pseudo/cams --gt-dir ... \\
        --out-dir work_dirs/sweep --crf --img-dir data/VOCdevkit/VOC2012/JPEGImages \\
        --crf-params bilateral_srgb=3,5,10 --max-images 200 --nproc 8
"""
import argparse
import glob
import itertools
import json
import os
import os.path as osp
from dataclasses import fields
from multiprocessing import Pool
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmseg.evaluation.metrics import IoUMetric

from mmsfc.postprocess import (
    UNCERTAIN,
    CRFParams,
    background_rule,
    cams_to_crf_label,
    load_cams,
    load_label_png,
)

#: What every output says about its best row.
GT_SELECTED = ('GT-selected: the best setting is chosen with the ground-truth masks it is '
               'scored on; report it as GT-selected, not as a GT-free result')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('cam_dir', help='folder of <id>.npz CAM files (or the out_dir '
                        'holding cams/)')
    parser.add_argument('--gt-dir', required=True,
                        help='ground-truth masks <id><gt-suffix> (class indices, 255 ignored)')
    parser.add_argument('--gt-suffix', default='.png')
    parser.add_argument('--out-dir', required=True, help='where sweep.json/.md/.png go')
    parser.add_argument('--ids', help='text file of image ids restricting the sweep')
    parser.add_argument('--max-images', type=int,
                        help='the first N images (sorted ids) with a mask')
    parser.add_argument('--num-classes', type=int,
                        help='classes with background (default: from the files)')
    parser.add_argument('--bg-offsets', type=float, nargs='+',
                        default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    parser.add_argument('--fg-scales', type=float, nargs='+', default=[2.0])
    parser.add_argument('--alphas', type=float, nargs='+', default=[1.0],
                        help='weights of M_P (1: the CAM metric, 0.7: the CRF, 0.3: IRN)')
    parser.add_argument('--crf', action='store_true', help='also sweep the two-pass CRF')
    parser.add_argument('--img-dir', help='images <id><img-suffix> (for --crf)')
    parser.add_argument('--img-suffix', default='.jpg')
    parser.add_argument('--crf-alphas', type=float, nargs='+', default=[0.7])
    parser.add_argument('--crf-bg-offsets', type=float, nargs='+', default=[0.4])
    parser.add_argument('--crf-fg-scales', type=float, nargs='+', default=[2.0])
    parser.add_argument('--crf-weak-bg-scales', type=float, nargs='+', default=[0.5],
                        help='background factor of the second CRF pass')
    parser.add_argument('--crf-params', nargs='+', default=[], metavar='FIELD=V1,V2',
                        help='CRFParams fields to sweep, e.g. bilateral_srgb=3,5,10 '
                        'gt_prob=0.7,0.9')
    parser.add_argument('--nproc', type=int, default=1, help='CRF processes')
    args = parser.parse_args(argv)
    if args.crf and not args.img_dir:
        parser.error('--crf needs --img-dir')
    return args


def crf_param_grid(specs: Sequence[str]) -> List[dict]:
    """``['bilateral_srgb=3,5']`` → ``[{'bilateral_srgb': 3.0}, {'bilateral_srgb': 5.0}]``."""
    names = {f.name: f.type for f in fields(CRFParams)}
    axes = []
    for spec in specs:
        name, _, values = spec.partition('=')
        if name not in names or not values:
            raise SystemExit(f'error: --crf-params {spec!r}: expected FIELD=V1,V2 with FIELD '
                             f'one of {sorted(names)}')
        cast = int if names[name] in (int, 'int') else float
        axes.append([(name, cast(v)) for v in values.split(',')])
    return [dict(combo) for combo in itertools.product(*axes)]


def find_images(args) -> List[str]:
    """Ids with a CAM file and a ground-truth mask (and in ``--ids``), sorted."""
    cam_dir = args.cam_dir
    if osp.isdir(osp.join(cam_dir, 'cams')):
        cam_dir = osp.join(cam_dir, 'cams')
    args.cam_dir = cam_dir
    ids = sorted(osp.basename(p)[:-4] for p in glob.glob(osp.join(cam_dir, '*.npz')))
    if not ids:
        raise SystemExit(f'error: no CAM files (<id>.npz) in {cam_dir}')
    if args.ids:
        with open(args.ids) as f:
            wanted = {line.strip() for line in f if line.strip()}
        ids = [i for i in ids if i in wanted]
    ids = [i for i in ids if osp.isfile(osp.join(args.gt_dir, i + args.gt_suffix))]
    if not ids:
        raise SystemExit(f'error: no image of {cam_dir} has a mask in {args.gt_dir}')
    return ids[:args.max_images] if args.max_images else ids


def rule_labels(keys: np.ndarray, cam_w: np.ndarray, cam_p: np.ndarray, alpha: float,
                bg_offset: float, fg_scale: float) -> np.ndarray:
    """Class indices ``(H, W)`` of ``argmax (M_W' + alpha * M_P')`` (no CRF)."""
    scores = background_rule(cam_w.copy(), bg_offset, fg_scale)
    if alpha:
        scores += alpha * background_rule(cam_p.copy(), bg_offset, fg_scale)
    return keys[scores.argmax(axis=0)]


class Areas:
    """Accumulated ``IoUMetric.intersect_and_union`` areas of one setting."""

    def __init__(self):
        self.areas = None

    def add(self, pred: np.ndarray, gt: np.ndarray, num_classes: int) -> None:
        areas = IoUMetric.intersect_and_union(torch.from_numpy(pred.astype(np.int64)),
                                              torch.from_numpy(gt.astype(np.int64)),
                                              num_classes, UNCERTAIN)
        self.areas = areas if self.areas is None else [a + b for a, b in zip(self.areas, areas)]

    def iou(self) -> np.ndarray:
        """Per-class IoU in % (NaN for classes absent from prediction and truth)."""
        metrics = IoUMetric.total_area_to_metrics(*self.areas, metrics=['mIoU'])
        return np.asarray(metrics['IoU'], np.float64) * 100


def _crf_job(job: tuple) -> np.ndarray:
    img_path, cam_path, kwargs = job
    from mmcv import imread
    image = imread(img_path, channel_order='rgb')
    if image is None:
        raise ValueError(f'cannot read image {img_path}')
    keys, cam_w, cam_p = load_cams(cam_path)
    if image.shape[:2] != cam_w.shape[1:]:
        raise ValueError(f'image {img_path} is {image.shape[1]}x{image.shape[0]}, its CAMs '
                         f'{cam_w.shape[2]}x{cam_w.shape[1]}')
    kwargs = dict(kwargs)
    params = CRFParams(**kwargs.pop('params'))
    return cams_to_crf_label(image, keys, cam_w, cam_p, params=params, **kwargs)


def sweep(args) -> Dict:
    ids = find_images(args)
    gts = {i: load_label_png(osp.join(args.gt_dir, i + args.gt_suffix)) for i in ids}
    num_classes = args.num_classes
    if num_classes is None:
        num_classes = 1 + max(max(int(load_cams(osp.join(args.cam_dir, i + '.npz'))[0].max())
                                  for i in ids),
                              max(int(g[g != UNCERTAIN].max(initial=0)) for g in gts.values()))
    rule_grid = [dict(alpha=a, bg_offset=o, fg_scale=s) for a in args.alphas
                 for s in args.fg_scales for o in args.bg_offsets]
    rule_areas = [Areas() for _ in rule_grid]
    for img_id in ids:
        keys, cam_w, cam_p = load_cams(osp.join(args.cam_dir, img_id + '.npz'))
        if cam_w.shape[1:] != gts[img_id].shape:
            raise SystemExit(f'error: the CAMs of {img_id} are {cam_w.shape[2]}x{cam_w.shape[1]}'
                             f', its mask {gts[img_id].shape[1]}x{gts[img_id].shape[0]}')
        for setting, areas in zip(rule_grid, rule_areas):
            areas.add(rule_labels(keys, cam_w, cam_p, **setting), gts[img_id], num_classes)
    rows = [dict(kind='rule', **s, **_scores(a)) for s, a in zip(rule_grid, rule_areas)]
    if args.crf:
        rows += crf_rows(args, ids, gts, num_classes)
    return dict(selection=GT_SELECTED, num_images=len(ids), num_classes=num_classes,
                rows=rows, best={kind: _best(rows, kind) for kind in ('rule', 'crf')
                                 if any(r['kind'] == kind for r in rows)})


def crf_rows(args, ids: List[str], gts: Dict[str, np.ndarray], num_classes: int) -> List[dict]:
    rows = []
    for params in crf_param_grid(args.crf_params) or [{}]:
        for alpha, bg_offset, fg_scale, weak in itertools.product(
                args.crf_alphas, args.crf_bg_offsets, args.crf_fg_scales,
                args.crf_weak_bg_scales):
            setting = dict(alpha=alpha, bg_offset=bg_offset, fg_scale=fg_scale,
                           weak_bg_scale=weak)
            jobs = [(osp.join(args.img_dir, i + args.img_suffix),
                     osp.join(args.cam_dir, i + '.npz'), dict(setting, params=dict(params)))
                    for i in ids]
            if args.nproc > 1:
                with Pool(args.nproc) as pool:
                    labels = pool.map(_crf_job, jobs, chunksize=1)
            else:
                labels = [_crf_job(job) for job in jobs]
            areas, uncertain, total = Areas(), 0, 0
            for img_id, label in zip(ids, labels):
                uncertain += int((label == UNCERTAIN).sum())
                total += label.size
                scored = label.copy()
                scored[scored == UNCERTAIN] = 0  # as the pipeline scores pseudo labels
                areas.add(scored, gts[img_id], num_classes)
            rows.append(dict(kind='crf', **setting, **params, **_scores(areas),
                             uncertain=100 * uncertain / total))
    return rows


def _scores(areas: Areas) -> dict:
    iou = areas.iou()
    return dict(mIoU=float(np.nanmean(iou)), IoU=[None if np.isnan(v) else float(v) for v in iou])


def _best(rows: List[dict], kind: str) -> dict:
    return max((r for r in rows if r['kind'] == kind), key=lambda r: r['mIoU'])


def write_outputs(result: dict, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'sweep.json'), 'w') as f:
        json.dump(result, f, indent=1)
    with open(osp.join(out_dir, 'sweep.md'), 'w') as f:
        f.write(markdown_table(result))
    plot(result, osp.join(out_dir, 'sweep.png'))


def markdown_table(result: dict) -> str:
    lines = [f'{result["num_images"]} images, {result["num_classes"]} classes. '
             f'{result["selection"]}.', '']
    for kind, title in (('rule', 'Background rule (argmax, no CRF)'),
                        ('crf', 'Two-pass CRF (255 counted as background)')):
        rows = [r for r in result['rows'] if r['kind'] == kind]
        if not rows:
            continue
        columns = [k for k in rows[0] if k not in ('kind', 'IoU', 'mIoU')]
        best = result['best'][kind]
        header = [c + ' (%)' if c == 'uncertain' else c for c in columns]
        lines += [f'### {title}', '', '| ' + ' | '.join(header) + ' | mIoU (%) |',
                  '|' + '---|' * (len(columns) + 1)]
        for row in rows:
            mark = ' (best, GT-selected)' if row is best else ''
            cells = [_cell(row[c]) for c in columns]
            lines.append('| ' + ' | '.join(cells) + f' | {row["mIoU"]:.2f}{mark} |')
        lines.append('')
    return '\n'.join(lines)


def _cell(value) -> str:
    return f'{value:.4g}' if isinstance(value, float) else str(value)


def plot(result: dict, path: str) -> None:
    """mIoU against bg_offset: one line per (alpha, fg_scale) and kind."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    curves: Dict[tuple, list] = {}
    for row in result['rows']:
        extra = tuple((k, v) for k, v in row.items()
                      if k not in ('kind', 'bg_offset', 'mIoU', 'IoU', 'uncertain'))
        curves.setdefault((row['kind'],) + extra, []).append((row['bg_offset'], row['mIoU']))
    for (kind, *extra), points in curves.items():
        points.sort()
        label = f'{kind} ' + ', '.join(f'{k}={_cell(v)}' for k, v in extra)
        ax.plot(*zip(*points), marker='o' if kind == 'rule' else 's',
                linestyle='-' if kind == 'rule' else '--', label=label)
    for kind, best in result['best'].items():
        ax.annotate(f'best {kind} (GT-selected)', (best['bg_offset'], best['mIoU']),
                    textcoords='offset points', xytext=(5, 5), fontsize=7)
    ax.set_xlabel('bg_offset')
    ax.set_ylabel('mIoU (%)')
    ax.set_title(f'CAM rule sweep, {result["num_images"]} images (best rows GT-selected)',
                 fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    result = sweep(args)
    write_outputs(result, args.out_dir)
    for kind, best in result['best'].items():
        setting = {k: v for k, v in best.items()
                   if k not in ('kind', 'IoU', 'mIoU', 'uncertain')}
        print(f'best {kind} (GT-selected): mIoU {best["mIoU"]:.2f} with {setting}')
    print(f'table: {osp.join(args.out_dir, "sweep.md")}')
    return result


if __name__ == '__main__':
    main()
