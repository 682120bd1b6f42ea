# Copyright (c) mmsfc contributors. All rights reserved.
"""IRN's edge and displacement heads on features of strides 4, 4, 8, 16, 16."""
import pytest
import torch

from mmsfc.models.heads import IRNDisplacementHead, IRNEdgeHead

CHANNELS = (8, 16, 16, 32, 32)


def features(size=32, batch=2):
    """Stem and four stages of an input of side ``size`` (odd grids included)."""
    grid4 = -(-size // 4)
    sides = (grid4, grid4, -(-grid4 // 2), -(-grid4 // 4), -(-grid4 // 4))
    torch.manual_seed(0)
    return [torch.randn(batch, c, s, s) for c, s in zip(CHANNELS, sides)]


@pytest.mark.parametrize('size', [32, 44])
def test_both_heads_answer_on_the_stride4_grid(size):
    feats = features(size)
    edge = IRNEdgeHead(in_channels=CHANNELS, channels=8, num_groups=2)
    disp = IRNDisplacementHead(in_channels=CHANNELS, channels=(8, 8, 16, 16, 16),
                               num_groups=(2, 2, 4, 4, 4), fuse_channels=16, fuse_groups=4)
    grid = feats[1].shape[-2:]
    assert edge(feats).shape == (2, 1, *grid)
    assert disp(feats).shape == (2, 2, *grid)


def test_each_feature_reaches_both_heads():
    edge = IRNEdgeHead(in_channels=CHANNELS, channels=8, num_groups=2)
    disp = IRNDisplacementHead(in_channels=CHANNELS, channels=(8, 8, 16, 16, 16),
                               num_groups=(2, 2, 4, 4, 4), fuse_channels=16, fuse_groups=4)
    for head in (edge, disp):
        feats = [f.requires_grad_() for f in features()]
        head(feats).square().sum().backward()
        assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)


def test_bad_feature_counts_are_refused():
    with pytest.raises(ValueError, match='differ in length'):
        IRNEdgeHead(in_channels=(8, 16), scale_factors=(1, 1, 2))
    with pytest.raises(ValueError, match='five features'):
        IRNDisplacementHead(in_channels=(8, 16, 16, 32), channels=(8, 8, 16, 16),
                            num_groups=(2, 2, 4, 4))
