# Copyright (c) mmsfc contributors. All rights reserved.
"""Convert a checkpoint of the authors' ``Net`` (network/resnet50_SFC.py).

The authors' model registers its ResNet-50 several times (``stage0..4``,
``backbone``, ``newly_added`` aliases of the same tensors); only the primary
names are read:

=====================  ==========================================
authors' key           mmsfc key
=====================  ==========================================
``resnet50.<name>``    ``backbone.<name>``
``classifier.weight``  ``classifier.weight``
``f9.weight``          ``pcm.proj.weight``
``side{i}.weight``     ``prototype_head.side_convs.{i-1}.weight``
=====================  ==========================================

The source is the authors' ``{'net': state_dict}`` (as their training script
saves it), a ``state_dict`` / ``model`` wrapper or a bare state dict, with or
without a ``module.`` prefix. The result is compared with the state dict of
the model built from ``--config``; unknown or missing keys are reported by
name and nothing is written. Example::

    python tools/model_converters/sfc_to_mmsfc.py final.pth sfc_r50_voc_converted.pth
    python tools/test.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \
        sfc_r50_voc_converted.pth
"""
import argparse
import os
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmsfc  # noqa: F401  (registration)

ALIAS_PREFIXES = ('stage0.', 'stage1.', 'stage2.', 'stage3.', 'stage4.', 'backbone.',
                  'newly_added.', 'resnet50.fc.')
DEFAULT_CONFIG = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'sfc',
                          'sfc_r50_1xb16-3966it_voc12aug-512x512.py')


def convert_key(key: str):
    """The mmsfc name of an authors' key, or None for an alias to drop."""
    if key.startswith(ALIAS_PREFIXES):
        return None
    if key.startswith('resnet50.'):
        return 'backbone.' + key[len('resnet50.'):]
    if key in ('classifier.weight', ):
        return key
    if key == 'f9.weight':
        return 'pcm.proj.weight'
    side = re.fullmatch(r'side([1-4])\.weight', key)
    if side:
        return f'prototype_head.side_convs.{int(side.group(1)) - 1}.weight'
    raise KeyError(key)


def convert(state_dict: Dict[str, torch.Tensor]) -> Tuple[OrderedDict, List[str]]:
    """Rename the authors' keys; returns the new state dict and unknown keys."""
    converted, unknown = OrderedDict(), []
    for key, value in state_dict.items():
        key = key[len('module.'):] if key.startswith('module.') else key
        try:
            new_key = convert_key(key)
        except KeyError:
            unknown.append(key)
            continue
        if new_key is not None:
            converted[new_key] = value
    return converted, unknown


def source_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The state dict inside a checkpoint.

    The authors' training script saves ``{'net': state_dict}``; other
    trainers use ``state_dict`` or ``model``; a bare state dict is returned
    as is.
    """
    for field in ('net', 'state_dict', 'model'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(field), dict):
            return checkpoint[field]
    return checkpoint


def expected_state(config: str) -> Dict[str, torch.Tensor]:
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model).state_dict()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help="the authors' checkpoint (e.g. final.pth)")
    parser.add_argument('dst', help='the mmsfc checkpoint to write')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='config whose model the checkpoint must fit exactly')
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        print(f'error: checkpoint not found: {args.src}', file=sys.stderr)
        return 1
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=False)
    converted, unknown = convert(source_state_dict(checkpoint))
    expected = expected_state(args.config)
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(converted)
                        if expected[k].shape != converted[k].shape)
    problems = [('unknown keys in the source', unknown),
                ('keys the model needs but the source lacks', missing),
                ('converted keys the model does not have', unexpected),
                ('keys with a different shape', mismatched)]
    if any(keys for _, keys in problems):
        for what, keys in problems:
            if keys:
                print(f'error: {what}: {", ".join(keys)}', file=sys.stderr)
        print(f'error: {args.src} does not fit {args.config}; nothing written', file=sys.stderr)
        return 1
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    tmp = args.dst + '.tmp'
    torch.save(dict(state_dict=converted, meta=dict(converted_from=osp.abspath(args.src))), tmp)
    os.replace(tmp, args.dst)
    print(f'converted {len(converted)} tensors: {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
