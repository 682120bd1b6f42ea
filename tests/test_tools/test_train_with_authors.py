# Copyright (c) mmsfc contributors. All rights reserved.
"""tools/analysis/train_with_authors.py: the stage split and the head-class statistics.

The authors' network itself is not available here (a user's checkout), so the
tests cover what the twin is built from and what the trace measures.
"""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from conftest import load_tool

tool = load_tool('analysis/train_with_authors')


@pytest.mark.parametrize('backbone', [
    dict(type='ResNet', depth=18, stem_channels=16, base_channels=16, out_indices=(0, 1, 2, 3),
         strides=(1, 2, 2, 1), init_cfg=None),
    dict(type='EfficientNetLite', arch='lite0', output_stride=16, init_cfg=None),
])
def test_backbone_stages_run_as_the_backbone(backbone):
    """Stem, then one piece per output: run in turn, they give the backbone's four maps."""
    init_default_scope('mmseg')
    net = MODELS.build(backbone)
    net.eval()  # (mmseg's ResNet.train returns None)
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        expected = net(x)
        pieces = tool.backbone_stages(net)
        assert len(pieces) == 5
        outs, y = [], pieces[0](x)
        for piece in pieces[1:]:
            y = piece(y)
            outs.append(y)
    assert len(outs) == len(expected) == 4
    for out, ref in zip(outs, expected):
        assert torch.equal(out, ref)


def test_backbone_stages_refuses_what_it_cannot_split():
    with pytest.raises(TypeError, match='no stage split'):
        tool.backbone_stages(torch.nn.Conv2d(3, 3, 1))


def test_cam_statistics_on_hand_made_maps():
    # 2 images, K = 2 (class 0 is the head), a 2 x 4 grid, all valid
    labels = torch.tensor([[1., 0.], [0., 1.]])
    mask = torch.ones(2, 3, 2, 4) * torch.cat([torch.ones(2, 1), labels], 1)[:, :, None, None]
    cam_w = torch.zeros(2, 3, 2, 4)
    cam_w[:, 0] = 0.5
    cam_w[0, 1, :, :3] = 1.0  # image 0: the head class wins 6 of 8 pixels
    cam_p = cam_w.clone()
    cam_p[0, 1] = 1.0  # M_P: all 8
    phi = torch.zeros(2, 2, 2, 4)
    phi[0, 0, :, :3] = 1.0  # the head seeds' feature
    phi[0, 1, :, 3] = 1.0  # the background seeds' feature: orthogonal
    stats = tool.cam_statistics(cam_w, cam_p, phi, mask, labels, head=[0], bg_seed_scale=1.0)
    assert stats['head_area_w'] == pytest.approx(6 / 8)
    assert stats['head_area_p'] == pytest.approx(1.0)
    assert stats['bg_area_w'] == pytest.approx((2 + 8) / 16)
    assert stats['bg_seed_share'] == pytest.approx((2 + 8) / 16)  # scale 1: the same pixels
    assert stats['head_bg_cos'] == pytest.approx(0.0)
    phi[0, 0, :, 3] = 1.0  # now the background's feature has the head's component too
    stats = tool.cam_statistics(cam_w, None, phi, mask, labels, head=[0], bg_seed_scale=1.0)
    assert 'head_area_p' not in stats and 'head_bg_cos' in stats
    assert stats['head_bg_cos'] == pytest.approx(2 ** -0.5, abs=1e-6)
