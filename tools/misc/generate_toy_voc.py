# Copyright (c) mmsfc contributors. All rights reserved.
"""Write the generated toy dataset (VOC layout) used by the tests and quick runs.

Example::

    python tools/misc/generate_toy_voc.py data/toy_voc
    python tools/train.py tests/data/configs/sfc_r18_1xb4-20it_toyvoc-64x64.py
"""
import argparse

from mmsfc.testing import generate_toy_voc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', nargs='?', default='data/toy_voc', help='output directory')
    parser.add_argument('--train-aug', type=int, default=24, help='train_aug images')
    parser.add_argument('--train', type=int, default=8, help='train images (from train_aug)')
    parser.add_argument('--val', type=int, default=8, help='val images')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.train > args.train_aug:
        parser.error('--train must not exceed --train-aug (train is a subset of train_aug)')
    ids = generate_toy_voc(args.out_dir, dict(train_aug=args.train_aug, train=args.train,
                                              val=args.val), seed=args.seed)
    print(f'wrote {args.out_dir}: ' + ', '.join(f'{k} {len(v)}' for k, v in ids.items()))


if __name__ == '__main__':
    main()
