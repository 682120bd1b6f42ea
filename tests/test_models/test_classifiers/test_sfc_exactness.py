# Copyright (c) mmsfc contributors. All rights reserved.
"""The rule for switches on the real ResNet-50 config: the defaults are the plain
computation, and every switch listed as exact (``FAST_TRAIN_CFG`` /
``FAST_TEST_CFG``) keeps the losses, every gradient and the CAMs of the plain path.

The network is ``configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py`` without pretrained
weights; its
BatchNorm statistics are made realistic (see :func:`realistic_batch_norms`), as
folding or reordering arithmetic amplifies rounding by ``gamma / sqrt(var)``.
"""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT

_BN = nn.modules.batchnorm._BatchNorm
CROP = 128


def realistic_batch_norms(model: nn.Module, images: torch.Tensor, seed: int = 0) -> None:
    """Give the backbone BatchNorm statistics of a trained network.

    Each conv's output channels are scaled by a log-uniform factor in
    [0.03, 3] and each BN gets random affine parameters; the running
    statistics are then the batch statistics of ``images`` (one pass in
    training mode with a cumulative average), so the activations keep their
    scale while the variances spread over about four decades, small ones
    included.
    """
    generator = torch.Generator().manual_seed(seed)
    backbone = model.backbone
    with torch.no_grad():
        for module in backbone.modules():
            if isinstance(module, nn.Conv2d):
                factors = torch.exp(torch.empty(module.out_channels).uniform_(
                    -3.5, 1.1, generator=generator))
                module.weight.mul_(factors.view(-1, 1, 1, 1))
            elif isinstance(module, _BN):
                module.weight.uniform_(0.2, 1.5, generator=generator)
                module.bias.normal_(0, 0.2, generator=generator)
                module.reset_running_stats()
                module.momentum = None
        backbone.train()
        backbone(images)
    model.train(False)


@pytest.fixture(scope='module')
def r50():
    init_default_scope('mmseg')  # (module scope: before the autouse fixture)
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.update(scales=(1.0, 0.5))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.loss_msdw.n_ibr, model.loss_msdw.n_iter = 4, 660
    model.loss_msdw.set_class_counts(list(range(20, 0, -1)))
    images = torch.randn(4, 3, CROP, CROP, generator=torch.Generator().manual_seed(1))
    realistic_batch_norms(model, images)
    labels = torch.zeros(2, 20)
    labels[0, [2, 14]] = 1
    labels[1, 7] = 1
    return model, images[:2], labels


def train_step(model, images, labels, train_cfg):
    model.train_cfg.update(train_cfg)
    model.train()  # norm_eval: the BatchNorms stay frozen
    model.zero_grad()
    samples = [SegDataSample(metainfo=dict(cls_label=label.numpy(), valid_box=box))
               for label, box in zip(labels, [(0, CROP, 0, 96), (16, CROP, 0, CROP)])]
    losses = model.loss(images, samples)
    model.parse_losses(losses)[0].backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


def predict(model, images, labels, test_cfg):
    model.test_cfg.update(test_cfg)
    model.eval()
    shape = tuple(images.shape[2:])
    samples = [SegDataSample(metainfo=dict(cls_label=label.numpy(), img_shape=shape,
                                           ori_shape=shape)) for label in labels]
    with torch.no_grad():
        return model.predict(images, samples)


def assert_within(value, reference, what):
    """Within max(1e-5, 1e-5 x the reference's largest magnitude)."""
    bound = max(1e-5, 1e-5 * reference.abs().max().item())
    error = (value - reference).abs().max().item()
    assert error <= bound, f'{what}: {error:.3g} > {bound:.3g}'


def test_defaults_are_the_plain_computation(r50):
    model = r50[0]
    built = MODELS.build(Config.fromfile(
        osp.join(REPO_ROOT, 'configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py')).model)
    for key, value in model.PLAIN_TRAIN_CFG.items():
        assert built.train_cfg[key] == value, key
    for key, value in model.PLAIN_TEST_CFG.items():
        assert built.test_cfg[key] == value, key


def test_exact_training_switches_keep_losses_and_gradients(r50):
    model, images, labels = r50
    plain_losses, plain_grads = train_step(model, images, labels, model.PLAIN_TRAIN_CFG)
    assert any(name.startswith('backbone.layer4') for name in plain_grads)
    for train_cfg in (model.FAST_TRAIN_CFG, dict(channels_last=True)):
        losses, grads = train_step(model, images, labels,
                                   {**model.PLAIN_TRAIN_CFG, **train_cfg})
        assert losses.keys() == plain_losses.keys()
        for name, value in losses.items():
            assert_within(value, plain_losses[name], name)
        assert grads.keys() == plain_grads.keys()
        for name, grad in grads.items():
            assert_within(grad, plain_grads[name], name)
    model.train_cfg.update(model.PLAIN_TRAIN_CFG)


def test_exact_inference_switches_keep_the_cams_and_labels(r50):
    model, images, labels = r50
    plain = predict(model, images, labels, model.PLAIN_TEST_CFG)
    fast = predict(model, images, labels, {**model.PLAIN_TEST_CFG, **model.FAST_TEST_CFG,
                                           'cpu_backbone_pixels': CROP * CROP})
    for one, ref in zip(fast, plain):
        for key in ('cam_w', 'cam_p', 'seg_logits'):
            error = (one.get(key).data - ref.get(key).data).abs().max().item()
            assert error <= 1e-5, f'{key}: {error:.3g}'
        assert torch.equal(one.pred_sem_seg.data, ref.pred_sem_seg.data)
    model.test_cfg.update(model.PLAIN_TEST_CFG)
