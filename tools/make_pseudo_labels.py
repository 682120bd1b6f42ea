# Copyright (c) mmsfc contributors. All rights reserved.
"""Stage 2 from a checkpoint: CAMs → CAM mIoU → dense CRF → pseudo labels → mIoU.

The same code path as ``CAMToPseudoLabelHook``; its settings in the config's
``custom_hooks`` apply, and the options below override them.

Example::

    python tools/make_pseudo_labels.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py CKPT \\
        --split ImageSets/Segmentation/train_aug.txt --out-dir work_dirs/pseudo --crf-workers 8
    torchrun --nproc_per_node 4 tools/make_pseudo_labels.py CONFIG CKPT --launcher pytorch

Stage 3 (after training IRN on the labels): ``--irn IRN_CONFIG IRN_CKPT`` also
writes the IRN masks (``masks/<id>.png``) from the stored CAMs, with the walk
settings of the IRN config's ``CAMToPseudoLabelHook`` (``mode='irn'``)::

    python tools/make_pseudo_labels.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py CKPT \\
        --out-dir work_dirs/pseudo --irn configs/irn/irn_r50_1xb32-3ep_voc12aug-512x512.py IRN_CKPT

Region refinement (opt-in): ``--refine-regions slic`` also snaps the labels
(and the IRN masks) to class-agnostic regions (SLIC or Felzenszwalb
superpixels, SAM automatic masks, or a folder of precomputed regions) and
writes them to ``labels_slic/`` (``masks_slic/``), scored as well. On an
existing output folder only the missing files are made::

    python tools/make_pseudo_labels.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py CKPT \\
        --out-dir work_dirs/pseudo --refine-regions slic --region-options n_segments=300
    python tools/make_pseudo_labels.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py CKPT \\
        --out-dir work_dirs/pseudo --refine-regions sam --sam-checkpoint sam_vit_h_4b8939.pth
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmseg.registry import MODELS

from mmsfc.engine import (
    PseudoLabelGenerator,
    add_data_root_argument,
    load_tool_config,
    setup_cpu_distributed,
    teardown_distributed,
    trusted_local_checkpoints,
)
from mmsfc.engine.hooks.cam_to_pseudo_label_hook import format_metrics
from mmsfc.postprocess import REGION_SOURCES


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the CAM training config')
    parser.add_argument('checkpoint', help='the CAM model checkpoint')
    parser.add_argument('--work-dir', help='directory of the log (and of a relative hook '
                        'out_dir); default ./work_dirs/<config name>')
    parser.add_argument('--split', help='split list (ann_file) to label, relative to data_root')
    parser.add_argument('--out-dir', help='output directory (default: the hook out_dir, else '
                        'pseudo_labels; a default is taken inside the work dir)')
    parser.add_argument('--eval-split', help='split list restricting the scoring')
    # not --nproc: torchrun would take it for an abbreviation of its --nproc-per-node
    parser.add_argument('--crf-workers', type=int,
                        help="CRF processes per rank (the hook's nproc)")
    parser.add_argument('--batch-size', type=int, help='same-size images inferred together')
    parser.add_argument('--no-store-cams', action='store_true',
                        help='stream CAMs into the CRF without writing cams/')
    parser.add_argument('--no-eval', action='store_true', help='skip scoring')
    parser.add_argument('--show-dir', help='write CAM overlays and coloured labels here')
    parser.add_argument('--irn', nargs=2, metavar=('IRN_CONFIG', 'IRN_CHECKPOINT'),
                        help='stage 3: also write IRN masks (needs the stored CAMs)')
    regions = parser.add_argument_group('region refinement (opt-in)')
    regions.add_argument('--refine-regions', choices=sorted(REGION_SOURCES),
                         help='also write the labels (and IRN masks) snapped to these regions '
                         'into labels_<type>/ (masks_<type>/)')
    regions.add_argument('--region-options', nargs='+', action=DictAction, default={},
                         help='arguments of the region source, e.g. n_segments=300 '
                         'compactness=10 (SLIC), scale=100 (Felzenszwalb), points_per_side=32 '
                         '(SAM)')
    regions.add_argument('--sam-checkpoint', help='SAM checkpoint (--refine-regions sam)')
    regions.add_argument('--sam-model-type', default='vit_h',
                         help='SAM model of the checkpoint: vit_h, vit_l or vit_b')
    regions.add_argument('--region-dir', help='folder of precomputed regions '
                         '(--refine-regions folder): <id>.png region maps or <id>/*.png masks')
    regions.add_argument('--region-majority', type=float,
                         help='a region goes to a class holding more than this share of it '
                         '(default 0.5)')
    regions.add_argument('--region-coverage', type=float,
                         help='... or holding at least this share of the class (default 0.85)')
    add_data_root_argument(parser)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def generator_settings(cfg: Config, args: argparse.Namespace) -> dict:
    """The hook's settings from the config, overridden by the command line."""
    settings = {}
    for hook in cfg.get('custom_hooks', []):
        if hook.get('type') == 'CAMToPseudoLabelHook':
            settings = {k: v for k, v in hook.items() if k != 'type'}
    settings.setdefault('dataloader', cfg.test_dataloader)
    if args.split:
        settings['dataloader'].dataset.ann_file = args.split
    out_dir = args.out_dir or settings.get('out_dir') or 'pseudo_labels'
    if not osp.isabs(out_dir) and not args.out_dir:
        out_dir = osp.join(cfg.work_dir, out_dir)
    settings['out_dir'] = out_dir
    overrides = dict(eval_ann_file=args.eval_split, nproc=args.crf_workers,
                     batch_size=args.batch_size, show_dir=args.show_dir)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if args.no_store_cams:
        settings['store_cams'] = False
    if args.no_eval:
        settings['evaluate'] = False
    if args.refine_regions:
        settings['regions'] = region_settings(args)
    rule = dict(majority=args.region_majority, coverage=args.region_coverage)
    rule = {k: v for k, v in rule.items() if v is not None}
    if rule:
        settings['region_rule'] = dict(settings.get('region_rule') or {}, **rule)
    return settings


def region_settings(args: argparse.Namespace) -> dict:
    """The region source config of ``--refine-regions`` and its options."""
    regions = dict(type=args.refine_regions, **args.region_options)
    if args.refine_regions == 'sam':
        regions.update(checkpoint=args.sam_checkpoint, model_type=args.sam_model_type)
    elif args.sam_checkpoint:
        raise SystemExit('error: --sam-checkpoint needs --refine-regions sam')
    if args.refine_regions == 'folder':
        regions['root'] = args.region_dir
    elif args.region_dir:
        raise SystemExit('error: --region-dir needs --refine-regions folder')
    return regions


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir,
                           required_files=[(args.checkpoint, 'checkpoint')],
                           data_root=args.data_root)
    settings = generator_settings(cfg, args)
    # only the model is needed: no training state, no pretrained download
    cfg.model.backbone.init_cfg = None
    cfg.load_from = None
    setup_cpu_distributed(cfg, args.launcher)
    if args.irn:  # before the long stage 2, so that a bad path fails at once
        if args.no_store_cams:
            raise SystemExit('error: --irn refines the stored CAMs; drop --no-store-cams')
        irn_model, walk = build_irn(*args.irn, args.launcher)
    runner = Runner.from_cfg(cfg)
    with trusted_local_checkpoints():
        runner.load_checkpoint(args.checkpoint, map_location='cpu')
    metrics = PseudoLabelGenerator(**settings).run(runner.model)
    runner.logger.info(f'pseudo labels in {settings["out_dir"]}:\n{format_metrics(metrics)}')
    if args.irn:
        generator = PseudoLabelGenerator(**dict(settings, walk=walk))
        metrics = generator.refine(irn_model.to(next(runner.model.parameters()).device))
        runner.logger.info(f'IRN masks in {generator.mask_dir}:\n{format_metrics(metrics)}')
    teardown_distributed()


def build_irn(config: str, checkpoint: str, launcher: str = 'none'):
    """The IRN model of ``config`` with ``checkpoint``, and its walk settings."""
    cfg = load_tool_config(config, launcher=launcher,
                           required_files=[(checkpoint, 'IRN checkpoint')])
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    walk = {}
    for hook in cfg.get('custom_hooks', []):
        if hook.get('type') == 'CAMToPseudoLabelHook' and hook.get('mode') == 'irn':
            walk = hook.get('walk') or {}
    return model, walk


if __name__ == '__main__':
    main()
