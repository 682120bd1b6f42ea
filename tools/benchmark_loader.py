# Copyright (c) mmsfc contributors. All rights reserved.
"""Throughput of a CAM config's training dataloader alone (decode, paste-crop, IBR).

Builds the config's ``train_dataloader`` (sampler, ``IBRBatchSampler``,
pipeline, workers) on generated VOC-sized images and times how many images
per second it delivers, to compare with the training step's images/s: the
loader keeps up when it is faster. The image bank re-decodes its images, so
each batch costs ``batch_size + num_resampled`` decodes.

Example::

    python tools/benchmark_loader.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \
        --num-workers 8 --batches 50
"""
import argparse
import tempfile
import time

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmsfc  # noqa: F401  (registration)
from mmsfc.testing import TOY_CLASSES, generate_toy_voc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='CAM config whose train_dataloader is timed')
    parser.add_argument('--images', type=int, default=64, help='generated images')
    parser.add_argument('--size', type=int, nargs=2, default=(375, 500),
                        help='range of image sides (VOC images are up to 500 px)')
    parser.add_argument('--batches', type=int, default=20, help='timed batches')
    parser.add_argument('--warmup', type=int, default=3, help='untimed batches first')
    parser.add_argument('--num-workers', type=int, help="override the config's num_workers")
    args = parser.parse_args(argv)

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    loader_cfg = cfg.train_dataloader
    with tempfile.TemporaryDirectory() as root:
        generate_toy_voc(root, dict(train_aug=args.images, train=0, val=0),
                         size_range=tuple(args.size))
        loader_cfg.dataset.update(data_root=root, metainfo=dict(classes=TOY_CLASSES),
                                  ann_file='ImageSets/Segmentation/train_aug.txt',
                                  cls_label_file='cls_labels.npy')
        if args.num_workers is not None:
            loader_cfg.num_workers = args.num_workers
            loader_cfg.persistent_workers = args.num_workers > 0
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        batches = iter(loader)
        for _ in range(args.warmup):
            next(batches)
        images = 0
        start = time.perf_counter()
        for _ in range(args.batches):
            images += len(next(batches)['inputs'])
        elapsed = time.perf_counter() - start
    print(f'train dataloader of {args.config}: {loader_cfg.num_workers} workers, '
          f'{images / args.batches:.0f} images per batch, sides {args.size[0]}-{args.size[1]} '
          f'px: {images / elapsed:.1f} images/s ({elapsed / args.batches:.3f} s per batch)')


if __name__ == '__main__':
    main()
