# Copyright (c) mmsfc contributors. All rights reserved.
"""The training fast path (train_cfg) leaves the losses and every gradient unchanged."""
import torch
import torch.nn as nn
from mmseg.structures import SegDataSample

from conftest import DeviceReads
from mmsfc.models.utils.fuse import BatchNormFolder

from .test_sfc_fast_path import randomize_batch_norms

_BN = nn.modules.batchnorm._BatchNorm


def losses_and_grads(model, inputs, samples, **train_cfg):
    model.train_cfg.update(train_cfg)
    model.zero_grad()
    losses = model.loss(inputs, samples)
    model.parse_losses(losses)[0].backward()  # the sum of the 'loss' terms
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


def test_training_fast_path_equals_plain_path(tiny_model):
    randomize_batch_norms(tiny_model, seed=1)
    tiny_model.train()  # norm_eval: BatchNorms stay frozen
    torch.manual_seed(2)
    inputs = torch.randn(3, 3, 64, 64)
    samples = [SegDataSample(metainfo=dict(cls_label=label, valid_box=box)) for label, box in
               zip([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]],
                   [(0, 64, 0, 48), (8, 56, 0, 64), (0, 64, 0, 64)])]
    plain_losses, plain_grads = losses_and_grads(tiny_model, inputs, samples,
                                                 **tiny_model.PLAIN_TRAIN_CFG)
    # default: the frozen stages folded and run as frozen copies (the trainable
    # pairs are too small to gain here); ratio 0: every trainable pair folded
    # too, in the autograd graph; without the frozen copies: their pairs patched
    for channels_last, ratio, freeze in ((False, 2.0, True), (True, 2.0, True),
                                         (False, 0.0, True), (False, 2.0, False)):
        tiny_model._bn_folder = BatchNormFolder(trainable_ratio=ratio)
        losses, grads = losses_and_grads(tiny_model, inputs, samples, fuse_bn=True,
                                         freeze_frozen_stages=freeze,
                                         channels_last=channels_last, sparse_side_features=True)
        # the stem (run from conv1), layer1 and layer2 (no trainable parameters) got
        # frozen copies, nothing else
        assert sorted(tiny_model._bn_folder._frozen_copies) == (
            ['conv1', 'layer1', 'layer2'] if freeze else [])
        if freeze:
            assert tiny_model._bn_folder._runs == [['conv1', 'bn1', 'relu', 'maxpool']]
            assert all(copy._module is not None
                       for copy in tiny_model._bn_folder._frozen_copies.values())
        assert losses.keys() == plain_losses.keys()
        for name, value in losses.items():
            torch.testing.assert_close(value, plain_losses[name], atol=1e-5, rtol=1e-5)
        assert grads.keys() == plain_grads.keys()
        assert any(name.startswith('backbone.layer3') for name in grads)
        for name, grad in grads.items():
            # equal to float rounding: 1e-5 absolute and 1e-4 of the tensor's largest entry
            scale = plain_grads[name].abs().max().item()
            error = (grad - plain_grads[name]).abs().max().item()
            assert scale > 0, name
            assert error <= min(1e-5, 1e-4 * scale), (name, error, scale)
    # every pair was patched (ResNet-18: 20 BNs, 10 in the frozen stem, layer1, layer2),
    # the frozen BNs are skipped, and the modules are restored afterwards
    with tiny_model._bn_folder.folded(tiny_model.backbone, inputs) as folded:
        assert folded == 20
        assert tiny_model.backbone.layer2[0].bn1(inputs) is inputs
    for module in tiny_model.backbone.modules():
        assert 'forward' not in module.__dict__
    assert isinstance(tiny_model.backbone.layer2[0].bn1, _BN)


def test_training_step_reads_nothing_back_from_the_device(tiny_model):
    """After the first step (which finds the BN pairs and plans the sparse resize), a
    step asks the device for no value: no ``.item()``, no data-dependent shape
    (``nonzero`` / ``unique`` / masked selection), which on a GPU would each wait
    for the queued work. Checked on the CPU by recording the dispatched ops."""
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
