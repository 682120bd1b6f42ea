# Copyright (c) mmsfc contributors. All rights reserved.
"""Inference-only folding of frozen BatchNorms into their convolutions, on a copy.

With frozen statistics a BatchNorm is a per-channel affine map, so a
convolution followed by it equals one convolution with scaled weights and a
bias (``mmcv.cnn.fuse_conv_bn``). The fold runs on a **copy** of the module:
the module's own weights, buffers and checkpoints are never altered, and the
copy is rebuilt whenever they change. It is exact in real arithmetic but not
in float32: with small running variances the scaled weights round
differently (on the SFC ResNet-50 the CAM before PCM moves by about 4e-5),
which is why the models keep it off by default.
"""
import copy
import warnings
from typing import List, Optional

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn
from torch import Tensor

_BN = nn.modules.batchnorm._BatchNorm


def batch_norms_frozen(module: nn.Module) -> bool:
    """Whether every BatchNorm of ``module`` normalises with its running statistics.

    True when each one is in eval mode and holds running statistics, i.e.
    when folding is exact up to float rounding.
    """
    return all(not bn.training and bn.running_mean is not None and bn.running_var is not None
               for bn in module.modules() if isinstance(bn, _BN))


def _flat_tensors(outputs) -> List[Tensor]:
    if isinstance(outputs, Tensor):
        return [outputs]
    if isinstance(outputs, (list, tuple)):
        return [t for out in outputs for t in _flat_tensors(out)]
    if isinstance(outputs, dict):
        return [t for out in outputs.values() for t in _flat_tensors(out)]
    return []


def fold_batch_norms(module: nn.Module, example: Tensor, rtol: float = 1e-3) -> nn.Module:
    """A copy of ``module`` with each BatchNorm folded into the conv registered before it.

    ``mmcv.cnn.fuse_conv_bn`` pairs a BatchNorm with the convolution
    registered just before it in the same parent (a ResNet's ``conv1`` /
    ``bn1``, a ``ConvModule``). A module that uses a conv's output other than
    through that BatchNorm would be computed wrongly, so the copy is checked
    on ``example``: each output must agree with ``module``'s to ``rtol`` of
    its largest magnitude (a fold is exact to float rounding; a wrong pairing
    moves the features by their own order), otherwise a ``RuntimeError`` is
    raised.

    Args:
        module (nn.Module): Module whose BatchNorms are frozen (eval mode,
            running statistics); it is not modified.
        example (Tensor): An input for the check, e.g. one image ``(1, 3, H, W)``.
        rtol (float): Tolerance of the check, relative to each output's max.

    Returns:
        nn.Module: The folded copy, in eval mode, without gradients.
    """
    if not batch_norms_frozen(module):
        raise ValueError('fold_batch_norms needs every BatchNorm in eval mode with '
                         'running statistics (frozen); folding a training BN is wrong')
    folded = copy.deepcopy(module)
    folded.eval()
    with torch.no_grad():
        fuse_conv_bn(folded)
    folded.requires_grad_(False)
    with torch.no_grad(), torch.autocast(example.device.type, enabled=False):
        reference = _flat_tensors(module(example))
        outputs = _flat_tensors(folded(example))
    if len(reference) != len(outputs) or not all(
            ref.shape == out.shape
            and (ref - out).abs().max().item() <= rtol * ref.abs().max().item() + 1e-6
            for ref, out in zip(reference, outputs)):
        raise RuntimeError('folding the BatchNorms changed the outputs: the module uses a '
                           'conv output other than through the BatchNorm registered after it')
    return folded


class FoldedModuleCache:
    """The folded copy of a module (:func:`fold_batch_norms`), kept while its weights are.

    The copy is rebuilt whenever a parameter or buffer of the module changes
    (in-place update, ``load_state_dict``, ``to(device)``): the key is each
    tensor's storage, version counter, device and dtype. :meth:`get` returns
    None when the module's BatchNorms are not frozen, when it has no
    BatchNorm (a ViT, a ConvNeXt) or when the fold fails its check (with a
    warning); then the module itself must run. The cache is transient: it is
    neither pickled nor deep-copied.
    """

    def __init__(self) -> None:
        self._key: Optional[tuple] = None
        self._module: Optional[nn.Module] = None

    def __getstate__(self) -> dict:
        return dict(_key=None, _module=None)

    def __deepcopy__(self, memo: dict) -> 'FoldedModuleCache':
        return FoldedModuleCache()

    @staticmethod
    def _state_key(module: nn.Module) -> tuple:
        return tuple((t.data_ptr(), t._version, t.device, t.dtype)
                     for t in (*module.parameters(), *module.buffers()))

    def get(self, module: nn.Module, example: Tensor) -> Optional[nn.Module]:
        """The folded copy of ``module``, built on ``example[:1]`` when stale.

        Args:
            module (nn.Module): The module to fold (not modified).
            example (Tensor): A batch of its inputs ``(N, ...)``.
        """
        if not batch_norms_frozen(module) or not any(isinstance(m, _BN)
                                                     for m in module.modules()):
            return None
        key = self._state_key(module)
        if key != self._key:
            self._module = None  # free the stale copy first
            try:
                self._module = fold_batch_norms(module, example[:1])
            except RuntimeError as error:
                warnings.warn(f'BatchNorm folding disabled for {type(module).__name__}: '
                              f'{error}', stacklevel=2)
            self._key = key
        return self._module
