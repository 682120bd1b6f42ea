# Copyright (c) mmsfc contributors. All rights reserved.
"""Train a model from a config (mmseg 1.x interface).

Example::

    python tools/train.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py
    python tools/train.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \
        --data-root /data/VOC2012 --work-dir work_dirs/sfc
    python tools/train.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \
        --amp --amp-dtype bfloat16
    bash tools/dist_train.sh configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py 8
"""
import argparse
import logging
import os
import sys

from mmengine.config import Config, DictAction
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmsfc.engine import (
                         add_data_root_argument,
                         enable_amp,
                         load_tool_config,
                         setup_cpu_distributed,
                         teardown_distributed,
                         trusted_local_checkpoints,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model (mmsfc / mmseg)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', action='store_true', default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--amp-dtype', choices=('float16', 'bfloat16'),
        help="autocast dtype of --amp (implies it; default: the config's optim_wrapper.dtype, "
        'else float16). With bfloat16 the loss is not scaled (float32\'s exponent range) '
        'unless the config sets optim_wrapper.loss_scale')
    add_data_root_argument(parser)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, e.g. train_cfg.max_iters=100')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line overrides."""
    cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir,
                           data_root=args.data_root)
    if args.amp or args.amp_dtype:
        try:
            already = enable_amp(cfg.optim_wrapper, args.amp_dtype)
        except ValueError as error:
            sys.exit(f'error: --amp: {error}')
        if already:
            print_log('AMP training is already enabled in your config.',
                      logger='current', level=logging.WARNING)
        print_log(f"AMP: autocast dtype {cfg.optim_wrapper.get('dtype') or 'float16'}, "
                  f"loss_scale {cfg.optim_wrapper.get('loss_scale', 'dynamic')}",
                  logger='current')
    cfg.resume = args.resume
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = build_config(args)
    device = get_device()
    if cfg.get('optim_wrapper', {}).get('type') == 'AmpOptimWrapper' and device in ('cpu', 'mps'):
        sys.exit('error: AMP training (--amp, --amp-dtype or an AmpOptimWrapper config) needs '
                 f"a GPU: mmengine's AmpOptimWrapper refuses the {device} device of this machine")
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    with trusted_local_checkpoints():  # resume / load_from of local files
        runner.train()
    teardown_distributed()


if __name__ == '__main__':
    main()
