# Copyright (c) mmsfc contributors. All rights reserved.
import pytest
import torch
from mmseg.registry import MODELS


def build_head(**kwargs):
    cfg = dict(type='SFCDeepLabV2Head', in_channels=8, in_index=0, num_classes=3)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_shape_init_and_no_extra_layers():
    head = build_head()
    x = torch.randn(2, 8, 9, 11)
    assert head([x]).shape == (2, 3, 9, 11)
    names = {name for name, _ in head.named_parameters()}
    assert names == {f'aspp.{i}.{p}' for i in range(4) for p in ('weight', 'bias')}
    assert [conv.dilation for conv in head.aspp] == [(6, 6), (12, 12), (18, 18), (24, 24)]
    for conv in head.aspp:
        assert abs(conv.weight.std().item() - 0.01) < 0.003 and conv.bias.abs().sum() == 0


def test_every_branch_is_summed():
    torch.manual_seed(0)
    head = build_head()
    for conv in head.aspp:  # non-zero biases, so a dropped branch is visible everywhere
        torch.nn.init.normal_(conv.bias)
    x = torch.randn(1, 8, 30, 30)
    with torch.no_grad():
        expected = sum(conv(x) for conv in head.aspp)
        torch.testing.assert_close(head([x]), expected)
        for conv in head.aspp:
            saved = conv.weight.clone(), conv.bias.clone()
            conv.weight.zero_()
            conv.bias.zero_()
            assert not torch.allclose(head([x]), expected), conv
            conv.weight.copy_(saved[0])
            conv.bias.copy_(saved[1])


def test_config_loss_averages_over_labelled_pixels_only():
    """The configured loss, through the head: ignored pixels do not dilute the mean."""
    import os.path as osp

    import torch.nn.functional as F
    from mmengine.config import Config
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from conftest import REPO_ROOT
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/_base_/models/deeplabv2_r101-d8.py'))
    head = build_head(loss_decode=cfg.model.decode_head.loss_decode.to_dict())
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 6)
    labels = torch.randint(0, 3, (2, 6, 6))
    labels[:, :, 3:] = 255  # half of each image uncertain / padding
    samples = [SegDataSample(gt_sem_seg=PixelData(data=label[None])) for label in labels]
    loss = head.loss_by_feat(logits, samples)['loss_ce']
    # deeplab-pytorch: nn.CrossEntropyLoss(ignore_index=255), a mean over valid pixels
    expected = F.cross_entropy(logits, labels, ignore_index=255)
    torch.testing.assert_close(loss, expected)
    diluted = F.cross_entropy(logits, labels, ignore_index=255, reduction='sum') / labels.numel()
    assert loss > 1.5 * diluted


def labelled_samples(labels):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    return [SegDataSample(gt_sem_seg=PixelData(data=label[None])) for label in labels]


@pytest.mark.parametrize('loss_decode', [
    dict(type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True),
    dict(type='CrossEntropyLoss', loss_weight=0.5, avg_non_ignore=False),
    [dict(type='CrossEntropyLoss', avg_non_ignore=True),  # two terms of one name: summed
     dict(type='CrossEntropyLoss', loss_weight=0.3, avg_non_ignore=True),
     dict(type='CrossEntropyLoss', loss_weight=0.2, loss_name='loss_other')],
])
@pytest.mark.parametrize('ignored', ['some', 'all'])
def test_losses_equal_mmseg_without_device_reads(loss_decode, ignored):
    """Our loss_by_feat gives mmseg's values with no read back from the device."""
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead

    from conftest import DeviceReads
    head = build_head(loss_decode=loss_decode)
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 5, 6, requires_grad=True)  # resized to the 10 x 12 labels
    labels = torch.randint(0, 3, (2, 10, 12))
    labels[0, :, 7:] = 255
    labels[1, :4] = 255
    if ignored == 'all':
        labels[:] = 255
    samples = labelled_samples(labels)
    with DeviceReads() as ours_reads:
        ours = head.loss_by_feat(logits, samples)
    with DeviceReads() as mmseg_reads:
        expected = BaseDecodeHead.loss_by_feat(head, logits, samples)
    assert ours.keys() == expected.keys()
    for name in expected:
        assert ours[name].shape == expected[name].shape, name
        torch.testing.assert_close(ours[name], expected[name], rtol=1e-6, atol=1e-6)
    grad, = torch.autograd.grad(sum(v for k, v in ours.items() if k != 'acc_seg'), logits)
    expected_grad, = torch.autograd.grad(
        sum(v for k, v in expected.items() if k != 'acc_seg'), logits)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-6, atol=1e-7)
    assert ours_reads.calls == []
    assert mmseg_reads.calls  # the recorder sees mmseg's count and boolean indexing
