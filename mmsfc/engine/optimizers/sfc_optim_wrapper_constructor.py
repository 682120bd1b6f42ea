# Copyright (c) mmsfc contributors. All rights reserved.
import copy
import logging

from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn
from torch.optim import Optimizer

#: The record mmengine's constructor logs for each frozen parameter.
_FROZEN_RECORD = 'is skipped since its requires_grad=False'


class _FrozenParamRecordFilter(logging.Filter):
    """Drops (and counts) the per-parameter "skipped since requires_grad=False" warnings."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if _FROZEN_RECORD in record.getMessage():
            self.dropped += 1
            return False
        return True


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SFCOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, with one log line for the frozen parameters.

    The default constructor logs a WARNING for every parameter with
    ``requires_grad=False``: 72 per run of the SFC ResNet-50 (frozen stem,
    layer1 and layer2), 208 for DeepLabV2's ResNet-101 (frozen BN). Freezing
    them is intended, so this constructor logs a single INFO line with their number instead; the
    parameter groups are exactly those of :class:`DefaultOptimWrapperConstructor`.
    Select it with ``optim_wrapper=dict(constructor='SFCOptimWrapperConstructor')``.

    ``optimizer=dict(..., fused=True)`` (the configs' SGD and AdamW) asks
    PyTorch for its fused implementation of the same update: one pass over
    each parameter, its gradient and its state instead of several. It needs
    torch >= 2.4 on CPUs (2.3 for SGD on CUDA); where the installed torch
    refuses it for these parameters, the optimiser is built without it, with
    a warning (the same update, only slower).

    The implementation chosen here (``fused``, ``foreach``) is kept when a
    checkpoint is loaded (``resume=True``): torch's ``load_state_dict`` would
    otherwise take each group's options from the checkpoint, so a run resumed
    from a checkpoint written without ``fused`` would go on unfused, and one
    written with it would fail where the fused kernels are missing. The state
    (momentum buffers, step counts) is the same for both implementations.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        logger = MMLogger.get_current_instance()
        record_filter = _FrozenParamRecordFilter()
        logger.addFilter(record_filter)
        try:
            try:
                optim_wrapper = super().__call__(model)
            except (TypeError, RuntimeError) as error:
                if not self.optimizer_cfg.get('fused') or 'fused' not in str(error):
                    raise
                print_log(f'{self.optimizer_cfg["type"]}(fused=True) is not available here '
                          f'({error}); using its default implementation (the same update)',
                          logger='current', level=logging.WARNING)
                self.optimizer_cfg = copy.deepcopy(self.optimizer_cfg)
                self.optimizer_cfg.pop('fused')
                record_filter.dropped = 0  # the groups are built again
                optim_wrapper = super().__call__(model)
        finally:
            logger.removeFilter(record_filter)
        if record_filter.dropped:
            print_log(f'{record_filter.dropped} frozen parameters (requires_grad=False) are '
                      'not optimised', logger='current')
        _keep_implementation_on_load(optim_wrapper.optimizer)
        return optim_wrapper


#: Options of torch's optimisers that choose an implementation, not the update.
_IMPLEMENTATION_OPTIONS = ('fused', 'foreach')


def _keep_implementation_on_load(optimizer: Optimizer) -> None:
    """Restore the groups' implementation options after each ``load_state_dict``."""
    chosen = [{key: group[key] for key in _IMPLEMENTATION_OPTIONS if key in group}
              for group in optimizer.param_groups]

    def restore(optimizer: Optimizer) -> None:
        for group, options in zip(optimizer.param_groups, chosen):
            group.update(options)

    register = getattr(optimizer, 'register_load_state_dict_post_hook', None)
    if register is not None:  # torch >= 2.1 (2.0 has no fused optimiser on CPUs either)
        register(restore)
