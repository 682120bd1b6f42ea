# Copyright (c) mmsfc contributors. All rights reserved.
"""SFCClassifier on ImageNet EfficientNet-Lite0 (configs/_base_/models/
sfc_efficientnet-lite0_os16.py): loads the weights, trains and predicts."""
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT
from mmsfc.models.backbones import convert_efficientnet_lite, efficientnet_lite_file

CONFIG = osp.join(REPO_ROOT, 'configs/_base_/models/sfc_efficientnet-lite0_os16.py')
NUM_FG = 4


def samples(labels, size=96):
    return [SegDataSample(metainfo=dict(
        cls_label=[int(c in label) for c in range(NUM_FG)], img_shape=(size, size),
        ori_shape=(size, size), valid_box=(0, size, 8, size - 4))) for label in labels]


def build(cfg, train_cfg=None):
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.num_classes = NUM_FG + 1
    if train_cfg is not None:
        model_cfg.train_cfg = train_cfg
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.loss_msdw.dc = torch.linspace(0.5, 1.5, NUM_FG)  # normally the DC hook's job
    return model


def test_sfc_on_pretrained_lite0_trains_and_predicts():
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.data_preprocessor.mean == [127.0] * 3
    assert cfg.model.data_preprocessor.std == [128.0] * 3
    model = build(cfg)
    weights = convert_efficientnet_lite(
        torch.load(efficientnet_lite_file('lite0'), map_location='cpu', weights_only=True))
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, weights[key]), key

    model.train()
    torch.manual_seed(1)
    inputs = torch.randn(1, 3, 96, 96)
    data_samples = samples([(0, 2)])
    losses = model.loss(inputs, data_samples)
    assert set(losses) == {'loss_cls', 'loss_dw_p', 'loss_dw_w'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    frozen = tuple(f'backbone.layers.{i}.' for i in range(4))
    for name, param in model.named_parameters():
        if name.startswith(frozen):
            assert not param.requires_grad and param.grad is None, name
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert not any(m.training for m in model.backbone.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))

    # the exact training switches (channels_last, as the demo's Lite0 configs set it, and
    # FAST_TRAIN_CFG) leave the losses and gradients, to float rounding: through this
    # network's 16 blocks float32 gradients differ from float64 by up to 7e-5 of a
    # tensor's largest entry
    fast = build(cfg, train_cfg=dict(type(model).FAST_TRAIN_CFG, channels_last=True))
    fast.load_state_dict(model.state_dict())
    fast.train()
    fast_losses = fast.loss(inputs, data_samples)
    sum(fast_losses.values()).backward()
    for key in losses:
        torch.testing.assert_close(fast_losses[key], losses[key], rtol=1e-5, atol=1e-6)
    fast_grads = dict(fast.named_parameters())
    for name, param in model.named_parameters():
        if param.grad is not None:
            got = fast_grads[name].grad
            assert (got - param.grad).abs().max() <= 2e-4 * param.grad.abs().max(), name

    model.eval()
    model.test_cfg['scales'] = (1.0, 0.5)
    with torch.no_grad():
        logits, cam_w, cam_p = model(inputs, mode='tensor')
        result = model.predict(inputs, samples([(0, 2)]))[0]
    assert logits.shape == (1, NUM_FG)
    assert cam_w.shape == cam_p.shape == (1, NUM_FG + 1, 6, 6)  # CAM stride 16
    assert result.seg_logits.data.shape == (NUM_FG + 1, 96, 96)
    assert torch.isfinite(result.seg_logits.data).all()
    assert set(result.pred_sem_seg.data.unique().tolist()) <= {0, 1, 3}

    # the exact inference switches give the plain maps at every input size
    plain = build(cfg)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    plain.test_cfg.update(type(model).PLAIN_TEST_CFG, scales=(1.0, 0.5))
    model.test_cfg.update(type(model).FAST_TEST_CFG, channels_last=True)
    for size in [(96, 96), (81, 70)]:
        image = inputs[:, :, :size[0], :size[1]]
        metas = [SegDataSample(metainfo=dict(cls_label=[1, 0, 1, 0], img_shape=size,
                                             ori_shape=size))]
        with torch.no_grad():
            got = model.predict(image, metas)[0]
            expected = plain.predict(image, metas)[0]
        for field in ('cam_w', 'cam_p', 'seg_logits'):
            torch.testing.assert_close(got.get(field).data, expected.get(field).data,
                                       rtol=1e-5, atol=1e-5, msg=field)
