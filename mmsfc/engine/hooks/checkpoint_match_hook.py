# Copyright (c) mmsfc contributors. All rights reserved.
import logging

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..checkpoint import checkpoint_match_message, count_matching_tensors


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Warn loudly when a loaded checkpoint lacks some of the model's tensors.

    mmengine loads ``load_from``, ``--resume`` and test checkpoints
    non-strictly: a checkpoint whose keys differ (e.g. the authors' raw
    weights, or another architecture's) loads nothing, and the run goes on
    with initial weights. After every load (``after_load_checkpoint``) this
    hook counts the model tensors present in the checkpoint's ``state_dict``
    by name and shape, logs ``loaded M of N`` and, when ``M < N``, a WARNING
    naming both numbers. The tools (``tools/train.py``, ``tools/test.py``,
    ``tools/make_pseudo_labels.py``) add it to every config.
    """

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('state_dict', checkpoint)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        matched, total = count_matching_tensors(model.state_dict(), state)
        if matched < total:
            print_log(checkpoint_match_message(matched, total), logger=runner.logger,
                      level=logging.WARNING)
        else:
            print_log(f'checkpoint: all {total} model tensors found', logger=runner.logger)
