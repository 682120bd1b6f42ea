# Copyright (c) mmsfc contributors. All rights reserved.
"""Test (and evaluate) a checkpoint with a config (mmseg 1.x interface).

For SFC configs this scores the multi-scale CAMs with mmseg's IoUMetric;
for segmentation configs it reports the segmenter's mIoU.

Example::

    python tools/test.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \
        work_dirs/sfc_r50_1xb16-3966it_voc12aug-512x512/iter_3966.pth
    bash tools/dist_test.sh configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py CKPT 8
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmsfc.engine import (
                         add_data_root_argument,
                         load_tool_config,
                         setup_cpu_distributed,
                         teardown_distributed,
                         trusted_local_checkpoints,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model (mmsfc / mmseg)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out', type=str, help='the directory to save the predicted segmentation maps')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir', help='draw the prediction of every test image into '
        'SHOW_DIR/vis_data/vis_image/test_<image file>_<checkpoint iteration>.png (SHOW_DIR '
        'relative to the current directory, not to the work dir)')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    add_data_root_argument(parser)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, e.g. model.test_cfg.inference_map=w')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace) -> Config:
    """Turn on the visualisation hook for ``--show`` / ``--show-dir``, for every image.

    mmseg's ``SegVisualizationHook`` draws one batch in ``interval`` (50 by
    default), which would leave a small test set without a single drawing.
    """
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        sys.exit('error: --show/--show-dir need a "visualization" hook in default_hooks, '
                 "e.g. visualization=dict(type='SegVisualizationHook')")
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    visualization_hook['interval'] = 1  # every image, not one in 50
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        visualizer = cfg.visualizer
        visualizer['save_dir'] = args.show_dir
        # a name of its own: mmengine reuses a visualizer instance of the same name
        # (e.g. the training run's, in the same process), with its save_dir
        visualizer['name'] = f'show_dir:{osp.abspath(args.show_dir)}'
    return cfg


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line overrides."""
    cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir,
                           required_files=[(args.checkpoint, 'checkpoint')],
                           data_root=args.data_root)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            sys.exit('error: --tta needs tta_model and tta_pipeline in the config (SFC '
                     'configs run their multi-scale + flip inference without it)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = build_config(args)
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    with trusted_local_checkpoints():  # the local checkpoint under test
        runner.test()
    teardown_distributed()


if __name__ == '__main__':
    main()
