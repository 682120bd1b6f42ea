# Copyright (c) mmsfc contributors. All rights reserved.
"""SFCPrototypeHead: side features, seeds, prototypes and the prototype CAM."""
import pytest
import torch
import torch.nn.functional as F

from mmsfc.models.heads import SFCPrototypeHead


def feats(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, c, s, s, generator=gen) for c, s in ((4, 16), (6, 8), (8, 4))]


def test_side_features_are_normalised_projections_on_the_cam_grid():
    torch.manual_seed(0)
    head = SFCPrototypeHead(in_channels=(4, 6, 8), channels=(3, 3, 5))
    phi = head.side_features(feats(), (4, 4))
    assert phi.shape == (2, 11, 4, 4)
    # the last map is on the grid already: its part is the unit-norm projection itself
    last = F.conv2d(feats()[2], head.side_convs[2].weight)
    torch.testing.assert_close(phi[:, 6:], last / (last.norm(dim=1, keepdim=True) + 1e-5))
    # the sparse computation gives the same Phi
    torch.testing.assert_close(head.side_features(feats(), (4, 4), sparse=True), phi,
                               atol=1e-6, rtol=1e-5)


def test_side_features_are_detached_from_the_backbone():
    head = SFCPrototypeHead(in_channels=(4, 6, 8), channels=(3, 3, 5))
    maps = [f.requires_grad_() for f in feats()]
    head.side_features(maps, (4, 4)).sum().backward()
    assert all(f.grad is None for f in maps)
    assert all(conv.weight.grad is not None for conv in head.side_convs)


def test_channel_mismatch_names_both_lists():
    head = SFCPrototypeHead(in_channels=(4, 6, 9), channels=(3, 3, 5))
    with pytest.raises(ValueError, match=r'in_channels=\[4, 6, 9\].*\[4, 6, 8\]'):
        head.side_features(feats(), (4, 4))
    with pytest.raises(ValueError, match='same length'):
        SFCPrototypeHead(in_channels=(4, 6), channels=(3, ))


def test_prototype_cam_is_one_where_the_features_equal_a_seed_prototype():
    """Two regions of constant features: each seed's prototype is its region's feature,
    so M_P is 1 on that region and the clipped cosine elsewhere; an absent class is 0."""
    head = SFCPrototypeHead(in_channels=(1, ), channels=(1, ), bg_seed_scale=1.0)
    phi = torch.zeros(1, 2, 4, 4)
    phi[:, 0, :, :2] = 1  # left half: (1, 0)
    phi[:, 1, :, 2:] = 1  # right half: (0, 1)
    cam = torch.zeros(1, 3, 4, 4)
    cam[:, 0, :, :2] = 1  # background wins on the left
    cam[:, 1, :, 2:] = 1  # class 1 on the right
    mask = torch.tensor([1., 1., 0.]).view(1, 3, 1, 1)  # class 2 absent
    cam_p = head(phi, cam, mask)
    assert cam_p.shape == (1, 3, 4, 4)
    torch.testing.assert_close(cam_p[0, 0, :, :2], torch.ones(4, 2))
    torch.testing.assert_close(cam_p[0, 0, :, 2:], torch.zeros(4, 2))
    torch.testing.assert_close(cam_p[0, 1, :, 2:], torch.ones(4, 2))
    assert not cam_p[0, 2].any()


def test_background_seed_scale_moves_the_seeds_to_the_foreground():
    head = SFCPrototypeHead(in_channels=(1, ), channels=(1, ), bg_seed_scale=0.3)
    phi = torch.zeros(1, 2, 2, 2)
    phi[:, 0] = 1
    cam = torch.zeros(1, 2, 2, 2)
    cam[:, 0] = 1.0
    cam[:, 1] = 0.5  # loses to the background unscaled, wins at 0.3
    cam_p = head(phi, cam, torch.ones(1, 2, 1, 1))
    assert not cam_p[0, 0].any() and torch.equal(cam_p[0, 1], torch.ones(2, 2))
