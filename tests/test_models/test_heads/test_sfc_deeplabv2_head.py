# Copyright (c) mmsfc contributors. All rights reserved.
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
