# Copyright (c) mmsfc contributors. All rights reserved.
"""Write the generated long-tailed shapes dataset (VOC layout), the SFC testbed.

Example::

    python tools/misc/generate_shapes.py data/shapes
    python tools/train.py configs/demo/sfc_r18-w32_1xb16-600it_shapes-160x160.py
"""
import argparse

from mmsfc.datasets import SHAPES_FREQUENCIES, generate_shapes_dataset


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', nargs='?', default='data/shapes', help='output directory')
    parser.add_argument('--train', type=int, default=1200, help='train_aug images')
    parser.add_argument('--eval-train', type=int, default=300,
                        help='train images (the first of train_aug; CAMs are scored on them)')
    parser.add_argument('--val', type=int, default=300, help='val images')
    parser.add_argument('--size', type=int, nargs=2, default=(160, 160), metavar=('H', 'W'))
    parser.add_argument('--frequencies', type=float, nargs=len(SHAPES_FREQUENCIES),
                        default=SHAPES_FREQUENCIES,
                        help='probability that an image holds each class, head to tail')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    meta = generate_shapes_dataset(args.out_dir, args.train, args.eval_train, args.val,
                                   tuple(args.size), args.frequencies, seed=args.seed)
    print(f'wrote {args.out_dir}: ' + ', '.join(f'{k} {v}' for k, v in meta['splits'].items()))
    print('images per class: ' + ', '.join(
        f'{c} {100 * f:.1f}%' for c, f in zip(meta['classes'][1:], meta['frequencies'])))
    return meta


if __name__ == '__main__':
    main()
