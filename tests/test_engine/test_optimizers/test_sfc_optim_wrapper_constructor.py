# Copyright (c) mmsfc contributors. All rights reserved.
import copy
import logging
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper

REPO = osp.join(osp.dirname(__file__), '..', '..', '..')


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


def sfc_schedule_wrapper_cfg():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/schedules/sfc_poly_3966it.py'))
    return copy.deepcopy(cfg.optim_wrapper)


def train_steps(model, wrapper_cfg, batches):
    """Parameters after SGD steps on ``batches`` through ``build_optim_wrapper``."""
    model = copy.deepcopy(model)
    model.train()
    optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    for inputs, samples in batches:
        optim_wrapper.update_params(sum(model.loss(inputs, samples).values()))
    return optim_wrapper, dict(model.named_parameters())


def tiny_batches(model, num):
    """``num`` batches of 2 random images for ``model`` (its class counts set)."""
    from mmseg.structures import SegDataSample
    model.loss_msdw.n_ibr, model.loss_msdw.n_iter = 1, 1
    model.loss_msdw.set_class_counts([3.0, 1.0, 2.0, 5.0])
    labels = np.array([[1., 0., 1., 0.], [0., 1., 0., 0.]], dtype=np.float32)
    return [(torch.randn(2, 3, 64, 64),
             [SegDataSample(metainfo=dict(cls_label=label)) for label in labels])
            for _ in range(num)]


def assert_same_update(params, reference, start):
    """Trainable ``params`` equal ``reference`` (to 1e-5), which moved from ``start``."""
    moved = 0
    for name, param in reference.items():
        if not param.requires_grad:
            continue
        moved += not torch.equal(param, start[name])
        torch.testing.assert_close(params[name], param, rtol=1e-5, atol=1e-6, msg=name)
    assert moved > 10  # the steps did update the trainable parameters


def refuse_fused_sgd(monkeypatch):
    """Make ``torch.optim.SGD`` refuse ``fused=True`` as torch < 2.3 / 2.4 does on CPUs."""
    original = torch.optim.SGD.__init__

    def old_torch_sgd(self, params, *args, fused=None, **kwargs):
        if fused:
            raise RuntimeError('`fused=True` requires all the params to be floating point '
                               'Tensors of supported devices')
        original(self, params, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, '__init__', old_torch_sgd)


def test_fused_sgd_of_the_schedule_makes_the_plain_update(tiny_model):
    torch.manual_seed(1)
    batches = tiny_batches(tiny_model, 3)
    fused_cfg = sfc_schedule_wrapper_cfg()
    assert fused_cfg.optimizer.fused is True
    plain_cfg = copy.deepcopy(fused_cfg)
    plain_cfg.optimizer.pop('fused')
    fused_wrapper, fused = train_steps(tiny_model, fused_cfg, batches)
    plain_wrapper, plain = train_steps(tiny_model, plain_cfg, batches)
    assert all(group['fused'] for group in fused_wrapper.optimizer.param_groups)
    assert not any(group['fused'] for group in plain_wrapper.optimizer.param_groups)
    assert_same_update(fused, plain, dict(tiny_model.named_parameters()))


def test_fused_optimiser_falls_back_where_torch_refuses_it(tiny_model, monkeypatch):
    refuse_fused_sgd(monkeypatch)
    logger = MMLogger.get_current_instance()
    handler = Records()
    logger.addHandler(handler)
    try:
        wrapper = build_optim_wrapper(tiny_model, sfc_schedule_wrapper_cfg())
    finally:
        logger.removeHandler(handler)
    assert isinstance(wrapper.optimizer, torch.optim.SGD)
    assert not any(group.get('fused') for group in wrapper.optimizer.param_groups)
    warnings = [m for level, m in handler.messages if level == logging.WARNING]
    assert len(warnings) == 1 and 'SGD(fused=True) is not available here' in warnings[0]
    frozen = sum(not p.requires_grad for p in tiny_model.parameters())
    assert (logging.INFO, f'{frozen} frozen parameters (requires_grad=False) are not '
            'optimised') in handler.messages
    # any other error is not swallowed
    cfg = sfc_schedule_wrapper_cfg()
    cfg.optimizer.pop('fused')
    cfg.optimizer.momentum = -1.0
    with pytest.raises(ValueError, match='momentum'):
        build_optim_wrapper(tiny_model, cfg)


def test_resume_keeps_the_built_implementation(tiny_model, monkeypatch):
    torch.manual_seed(2)
    first, second = tiny_batches(tiny_model, 2), tiny_batches(tiny_model, 1)
    plain_cfg = sfc_schedule_wrapper_cfg()
    plain_cfg.optimizer.pop('fused')
    # a checkpoint written by an unfused run, with a decayed lr
    plain_wrapper, _ = train_steps(tiny_model, plain_cfg, first)
    checkpoint = copy.deepcopy(plain_wrapper.state_dict())
    for group in checkpoint['param_groups']:
        group['lr'] *= 0.5
    assert not any(group['fused'] for group in checkpoint['param_groups'])

    resumed = copy.deepcopy(tiny_model)
    resumed.train()
    fused_wrapper = build_optim_wrapper(resumed, sfc_schedule_wrapper_cfg())
    fused_wrapper.load_state_dict(copy.deepcopy(checkpoint))
    groups = fused_wrapper.optimizer.param_groups
    assert all(group['fused'] for group in groups)  # not the checkpoint's False
    assert [g['lr'] for g in groups] == [g['lr'] for g in checkpoint['param_groups']]
    assert len(fused_wrapper.optimizer.state) == len(checkpoint['state']) > 0

    # the same update as the unfused optimiser resumed from the same checkpoint
    continued = copy.deepcopy(tiny_model)
    continued.train()
    plain_again = build_optim_wrapper(continued, plain_cfg)
    plain_again.load_state_dict(copy.deepcopy(checkpoint))
    assert not any(group['fused'] for group in plain_again.optimizer.param_groups)
    for model, wrapper in ((resumed, fused_wrapper), (continued, plain_again)):
        for inputs, samples in second:
            wrapper.update_params(sum(model.loss(inputs, samples).values()))
    assert_same_update(dict(resumed.named_parameters()), dict(continued.named_parameters()),
                       dict(tiny_model.named_parameters()))

    # a fused checkpoint where torch has no fused SGD: resumed unfused, and it steps
    refuse_fused_sgd(monkeypatch)
    fallback = build_optim_wrapper(continued, sfc_schedule_wrapper_cfg())
    fallback.load_state_dict(copy.deepcopy(fused_wrapper.state_dict()))
    assert not any(group['fused'] for group in fallback.optimizer.param_groups)
    for inputs, samples in second:
        fallback.update_params(sum(continued.loss(inputs, samples).values()))
