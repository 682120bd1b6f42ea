# Copyright (c) mmsfc contributors. All rights reserved.
"""A training step asks the device for no value, with the switches off and on."""
import pytest
import torch
from mmseg.structures import SegDataSample

from conftest import DeviceReads


def losses_and_grads(model, inputs, samples, **train_cfg):
    """The losses and every parameter's gradient of one step with ``train_cfg`` set."""
    model.train_cfg.update(train_cfg)
    model.zero_grad()
    losses = model.loss(inputs, samples)
    model.parse_losses(losses)[0].backward()  # the sum of the 'loss' terms
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


@pytest.mark.parametrize('fast', [False, True])
def test_training_step_reads_nothing_back_from_the_device(tiny_model, fast):
    """After the first step (which plans the sparse resize), a step asks the device
    for no value: no ``.item()``, no data-dependent shape (``nonzero`` / ``unique`` /
    masked selection), which on a GPU would each wait for the queued work. Checked on
    the CPU by recording the dispatched ops."""
    tiny_model.train_cfg.update(tiny_model.FAST_TRAIN_CFG if fast
                                else tiny_model.PLAIN_TRAIN_CFG)
    tiny_model.train()
    samples = [SegDataSample(metainfo=dict(cls_label=label)) for label in
               ([1, 0, 1, 0], [0, 1, 0, 0])]
    inputs = torch.randn(2, 3, 64, 64)
    sum(tiny_model.loss(inputs, samples).values()).backward()  # first step: set-up
    with DeviceReads() as record:
        sum(tiny_model.loss(inputs, samples).values()).backward()
    assert record.calls == []
    # the recorder sees such reads: a step with an .item() is caught
    with DeviceReads() as record:
        tiny_model.loss(inputs, samples)['loss_cls'].item()
    assert record.calls == ['_local_scalar_dense']
