# Copyright (c) mmsfc contributors. All rights reserved.
import logging

from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append((record.levelno, record.getMessage()))


def build(model, constructor):
    logger = MMLogger.get_current_instance()
    handler = Records()
    logger.addHandler(handler)
    try:
        cfg = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1),
                   paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=10.0)}))
        if constructor:
            cfg['constructor'] = constructor
        return build_optim_wrapper(model, cfg), handler.messages
    finally:
        logger.removeHandler(handler)


def test_one_line_for_frozen_parameters_same_groups(tiny_model):
    frozen = sum(not p.requires_grad for p in tiny_model.parameters())
    assert frozen > 10  # stem, layer1, layer2 of the tiny ResNet-18
    default, default_log = build(tiny_model, None)
    ours, our_log = build(tiny_model, 'SFCOptimWrapperConstructor')
    skipped = [m for level, m in default_log if 'skipped since its requires_grad=False' in m]
    assert len(skipped) == frozen
    assert not any('skipped since' in m for _, m in our_log)
    assert (logging.INFO, f'{frozen} frozen parameters (requires_grad=False) are not '
            'optimised') in our_log
    for a, b in zip(default.optimizer.param_groups, ours.optimizer.param_groups,
                    strict=True):
        assert a['lr'] == b['lr'] and a['params'][0] is b['params'][0]
    # the filter is gone afterwards
    logger = MMLogger.get_current_instance()
    assert not [f for f in logger.filters if 'Frozen' in type(f).__name__]
