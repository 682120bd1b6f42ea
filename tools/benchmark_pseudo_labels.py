# Copyright (c) mmsfc contributors. All rights reserved.
"""Throughput of the pseudo-label stage on generated VOC-sized images.

Measures images/s of

- multi-scale + flip CAM inference (a randomly initialised model of CONFIG on
  the current device) with the config's fast paths (``channels_last`` with
  ``--channels-last``, a bfloat16 backbone with ``--backbone-autocast
  bfloat16``) and without (``SFCClassifier.PLAIN_TEST_CFG``), alternately
  ``--rounds`` times;
- the two-pass dense CRF with 1 process and each ``--nproc`` count (by
  default 2 and all the cores this process may use, at most ``--images``),
  with the speed-up over 1 process;
- the whole stage (inference, CRF, files; no scoring) with the CRF overlapped
  with inference (``PseudoLabelGenerator.overlap_crf``) and without, with the
  largest ``--nproc``.

Example::

    python tools/benchmark_pseudo_labels.py \
        configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py --images 16
    python tools/benchmark_pseudo_labels.py \
        configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py --nproc 1 4 8 16
"""
import argparse
import os
import os.path as osp
import tempfile
import time
from typing import List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmsfc.engine import PseudoLabelGenerator
from mmsfc.testing import TOY_CLASSES, generate_toy_voc


def processes(count: int) -> str:
    """``'1 process'``, ``'2 processes'``, ..."""
    return f'{count} process' + ('es' if count > 1 else '')


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS tells it)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def crf_process_counts(requested: Optional[List[int]], images: int, cores: int) -> List[int]:
    """The CRF process counts to time: 1 and ``requested``, by default 2 and
    ``cores``, none of these above ``images`` (a pool's start-up would
    dominate its row) or ``cores``."""
    default = {min(count, cores, images) for count in (2, cores)}
    return sorted({1, *(requested or default)})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='CAM model config (random weights are used)')
    parser.add_argument('--images', type=int, default=8, help='images to process')
    parser.add_argument('--size', type=int, nargs=2, default=(375, 500),
                        help='range of image sides (VOC images are up to 500 px)')
    parser.add_argument('--nproc', type=int, nargs='+',
                        help='CRF process counts to time (1 is always timed; default: 2 and '
                        'all the cores, at most --images); the whole stage runs with the '
                        'largest')
    parser.add_argument('--rounds', type=int, default=1,
                        help='timed inference passes per variant, alternately')
    parser.add_argument('--channels-last', action='store_true',
                        help='the fast inference variant also uses channels_last')
    parser.add_argument('--backbone-autocast', choices=['bfloat16', 'float16'],
                        help='the fast inference variant runs the backbone under autocast '
                        '(GPU; changes the maps slightly)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.nproc or ()):
        parser.error(f'--nproc takes counts of 1 or more, got {args.nproc}')
    counts = crf_process_counts(args.nproc, args.images, usable_cores())

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.backbone.init_cfg = None
    cfg.model.num_classes = len(TOY_CLASSES)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(args.device)

    with tempfile.TemporaryDirectory() as root:
        generate_toy_voc(root, dict(train_aug=args.images, train=0, val=0),
                         size_range=tuple(args.size))
        pipeline = [dict(type='LoadImageFromFile'),
                    dict(type='PackSegInputs', meta_keys=('img_path', 'ori_shape', 'img_shape',
                                                           'cls_label'))]
        dataloader = dict(num_workers=0, dataset=dict(
            type='SFCVOCDataset', data_root=root, metainfo=dict(classes=TOY_CLASSES),
            ann_file='ImageSets/Segmentation/train_aug.txt', cls_label_file='cls_labels.npy',
            data_prefix=dict(img_path='JPEGImages'), pipeline=pipeline))
        generator = PseudoLabelGenerator(osp.join(root, 'out'), dataloader, evaluate=False)
        dataset = generator._build_dataset()
        generator._take_rule_from(model)  # bg_offset / fg_scale of the model's test_cfg
        palette = dataset.metainfo['palette']
        ids = [osp.basename(dataset.get_data_info(i)['img_path'])[:-4]
               for i in range(len(dataset))]
        timings = {'fast': [], 'plain': []}
        generator.overlap_crf = False
        todo = list(range(len(dataset)))
        fast_cfg = {key: model.test_cfg[key] for key in model.PLAIN_TEST_CFG}
        fast_cfg.update(channels_last=args.channels_last,
                        backbone_autocast=args.backbone_autocast)
        model.test_cfg.update(fast_cfg)
        generator._infer(model, dataset, todo[:1], palette)  # warm-up (builds the fast copy)
        for _ in range(args.rounds):
            for variant in ('fast', 'plain'):
                model.test_cfg.update(fast_cfg if variant == 'fast' else model.PLAIN_TEST_CFG)
                start = time.perf_counter()
                generator._infer(model, dataset, todo, palette)
                if args.device.startswith('cuda'):
                    torch.cuda.synchronize()
                timings[variant].append(time.perf_counter() - start)
        model.test_cfg.update(fast_cfg)
        for nproc in counts:
            generator.nproc = nproc
            generator.label_dir = osp.join(root, f'labels{nproc}')
            start = time.perf_counter()
            generator._run_crf(dataset, ids, palette)
            timings[f'crf{nproc}'] = time.perf_counter() - start
        for overlap in (True, False):
            whole = PseudoLabelGenerator(osp.join(root, f'whole{overlap}'), dataloader,
                                         evaluate=False, nproc=counts[-1])
            whole.overlap_crf = overlap
            start = time.perf_counter()
            whole.run(model)
            timings[f'whole{overlap}'] = time.perf_counter() - start
    n = args.images
    device = torch.cuda.get_device_name() if args.device.startswith('cuda') else 'CPU'
    print(f'device: {device} ({torch.get_num_threads()} threads); {n} images, sides '
          f'{args.size[0]}-{args.size[1]} px; scales {model.test_cfg["scales"]} + flip')
    for variant in ('fast', 'plain'):
        times = timings[variant]
        print(f'CAM inference, {variant} path: {n / np.median(times):.3f} images/s (median of '
              f'{len(times)}; best {n / min(times):.3f})')
    print(f'fast / plain inference time: '
          f'{np.median(timings["fast"]) / np.median(timings["plain"]):.2f}')
    for nproc in counts:
        crf = timings[f'crf{nproc}']
        speed_up = f' ({timings["crf1"] / crf:.2f}x 1 process)' if nproc > 1 else ''
        print(f'CRF, {processes(nproc)}: {n / crf:.2f} images/s{speed_up}')
    print(f'whole stage ({processes(counts[-1])} for the CRF): '
          f'{n / timings["wholeTrue"]:.2f} images/s '
          f'with the CRF overlapped, {n / timings["wholeFalse"]:.2f} images/s after inference')


if __name__ == '__main__':
    main()
