# Copyright (c) mmsfc contributors. All rights reserved.
"""SFCClassifier with backbones other than a 4-stage ResNet: any number of feature
maps, tuples per stage, a single tensor; the CAM grid is the last map's grid."""
import copy
import importlib.util
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT

# test files are not importable by name (importlib mode): load the parity
# tests' literal re-statement of the authors' forward from its file.
_spec = importlib.util.spec_from_file_location(
    '_sfc_parity', osp.join(osp.dirname(__file__), 'test_sfc_parity.py'))
_parity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_parity)
literal_forward = _parity.literal_forward


@MODELS.register_module(name='_ContractToyBackbone', force=True)
class ContractToyBackbone(nn.Module):
    """Conv stages with the given strides and channels; ``out_format`` selects
    plain maps, ``(map, cls_token)`` tuples, a bare tensor (the last map only)
    or ViT-style token sequences ``(N, hw, C)``."""

    def __init__(self, channels=(8, 12, 16), strides=(2, 2, 2), out_format='maps'):
        super().__init__()
        ins = (3,) + tuple(channels[:-1])
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU())
            for cin, cout, stride in zip(ins, channels, strides))
        self.out_format = out_format

    def forward(self, x):
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        if self.out_format == 'tuples':
            return tuple((out, out.mean(dim=(2, 3))) for out in outs)
        if self.out_format == 'tensor':
            return outs[-1]
        if self.out_format == 'tokens':
            return tuple(out.flatten(2).transpose(1, 2) for out in outs)
        return tuple(outs)


def toy_model_cfg(channels=(8, 12, 16), strides=(2, 2, 2), out_format='maps'):
    return dict(
        type='SFCClassifier',
        in_channels=channels[-1],
        num_classes=5,
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='_ContractToyBackbone', channels=channels, strides=strides,
                      out_format=out_format),
        pcm=dict(type='SFCPCM', in_channels=3 + channels[-1], channels=channels[-1]),
        prototype_head=dict(type='SFCPrototypeHead', in_channels=channels,
                            channels=tuple(4 for _ in channels)),
        loss_msdw=dict(type='MSDWLoss', class_counts=[10, 6, 3, 1], n_ibr=4, n_iter=660),
        test_cfg=dict(scales=(1.0, 0.5)))


def samples(labels, shape=(32, 32)):
    return [SegDataSample(metainfo=dict(cls_label=label, img_shape=shape, ori_shape=shape,
                                        valid_box=(0, shape[0], 4, shape[1])))
            for label in labels]


@pytest.mark.parametrize('channels,strides,grid', [
    ((6,), (4,), 8),                          # one map
    ((8, 12, 16), (2, 2, 2), 4),              # three maps, grid of the last (stride 8)
    ((4, 6, 8, 10, 12), (2, 2, 1, 1, 1), 8),  # five maps, the last three on one grid
])
def test_any_number_of_maps_trains_and_predicts(channels, strides, grid):
    torch.manual_seed(0)
    model = MODELS.build(toy_model_cfg(channels, strides))
    inputs = torch.randn(2, 3, 32, 32)
    losses = model.loss(inputs, samples([[1, 0, 1, 0], [0, 0, 0, 1]]))
    assert set(losses) == {'loss_cls', 'loss_dw_p', 'loss_dw_w'}
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    logits, cam_w, cam_p = model(inputs, mode='tensor')
    assert logits.shape == (2, 4)
    assert cam_w.shape == cam_p.shape == (2, 5, grid, grid)
    model.eval()
    with torch.no_grad():
        result = model.predict(inputs[:1, :, :30, :26], samples([[0, 1, 0, 1]], (30, 26)))[0]
    assert result.seg_logits.data.shape == (5, 30, 26)
    assert set(result.pred_sem_seg.data.unique().tolist()) <= {0, 2, 4}


@pytest.mark.parametrize('out_format', ['tuples', 'tensor'])
def test_tuple_and_tensor_outputs_read_as_maps(out_format):
    """Same weights: ``(map, cls_token)`` per stage or a bare tensor give the maps' results."""
    channels = (16,) if out_format == 'tensor' else (8, 12, 16)
    strides = (8,) if out_format == 'tensor' else (2, 2, 2)
    torch.manual_seed(0)
    plain = MODELS.build(toy_model_cfg(channels, strides, 'maps'))
    other = MODELS.build(toy_model_cfg(channels, strides, out_format))
    other.load_state_dict(plain.state_dict())
    inputs = torch.randn(2, 3, 32, 32)
    for got, expected in zip(other(inputs, mode='tensor'), plain(inputs, mode='tensor')):
        assert torch.equal(got, expected)


def test_token_sequences_and_channel_mismatches_rejected():
    inputs = torch.randn(1, 3, 32, 32)
    model = MODELS.build(toy_model_cfg(out_format='tokens'))
    with pytest.raises(ValueError, match="backbone output 0 is .*out_type='featmap'"):
        model(inputs, mode='tensor')
    cfg = toy_model_cfg()
    cfg['in_channels'] = 32
    with pytest.raises(ValueError, match='16 channels.*in_channels is 32'):
        MODELS.build(cfg)(inputs, mode='tensor')
    cfg = toy_model_cfg()
    cfg['pcm']['in_channels'] = 3 + 12
    with pytest.raises(ValueError, match='SFCPCM.in_channels is 15.*3 image \\+ 16 feature'):
        MODELS.build(cfg)(inputs, mode='tensor')
    cfg = toy_model_cfg()
    cfg['prototype_head'].update(in_channels=(12, 16), channels=(4, 4))
    with pytest.raises(ValueError, match=r'in_channels=\[12, 16\].*channels \[8, 12, 16\]'):
        MODELS.build(cfg)(inputs, mode='tensor')


def test_side_features_are_detached_from_the_backbone():
    torch.manual_seed(0)
    model = MODELS.build(toy_model_cfg())
    feats = model.extract_feat(torch.randn(1, 3, 32, 32))
    model.prototype_head.side_features(feats, feats[-1].shape[2:]).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad.abs().sum() > 0 for p in model.prototype_head.parameters())


def test_r50_config_matches_literal_restatement():
    """The ResNet-50 of configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py through the
    contract code path."""
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).eval()
    torch.manual_seed(1)
    image = torch.randn(1, 3, 80, 96)
    label = torch.zeros(1, 21, 1, 1)
    label[0, [0, 3, 12]] = 1
    with torch.no_grad():
        logits, cam_w, cam_p = model(image, mode='tensor')
        ref_logits, ref_w, ref_p = literal_forward(model, image, torch.ones(1, 1, 1, 1))
        assert cam_w.shape == (1, 21, 5, 6)
        torch.testing.assert_close(logits, ref_logits)
        torch.testing.assert_close(cam_w, ref_w)
        torch.testing.assert_close(cam_p, ref_p, atol=1e-5, rtol=1e-4)
        pred_w, pred_p = model._predict_scale(image, label)
        pair = torch.cat([image, image.flip(-1)])
        _, ref_w, ref_p = literal_forward(model, pair, torch.ones(1, 1, 1, 1), flip_merge=True,
                                          label=label)
        torch.testing.assert_close(pred_w, ref_w)
        torch.testing.assert_close(pred_p, ref_p, atol=1e-5, rtol=1e-4)
