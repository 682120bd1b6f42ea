# Copyright (c) mmsfc contributors. All rights reserved.
import torch
import torch.nn.functional as F

from mmsfc.models.utils import (
    masked_prototypes,
    max_normalize,
    normalized_cam_with_background,
    prototype_cam,
    seed_masks,
)


def test_normalized_cam_background_uses_all_classes():
    logits = torch.tensor([[[[2.0, -1.0]], [[1.0, 4.0]]]])  # (1, 2, 1, 2)
    cam = normalized_cam_with_background(logits)
    assert cam.shape == (1, 3, 1, 2)
    # class 0: relu -> [2, 0], max-normalised -> [~1, 0]; class 1: [0.25, ~1]
    torch.testing.assert_close(cam[0, 1, 0], torch.tensor([2, 0]) / (2 + 1e-5))
    torch.testing.assert_close(cam[0, 2, 0], torch.tensor([1, 4]) / (4 + 1e-5))
    expected_bg = 1 - torch.maximum(cam[0, 1, 0], cam[0, 2, 0])
    torch.testing.assert_close(cam[0, 0, 0], expected_bg)


def test_seed_masks_background_scale_and_mask():
    cam = torch.zeros(1, 3, 1, 3)
    cam[0, 0] = torch.tensor([0.9, 0.9, 0.9])  # background
    cam[0, 1] = torch.tensor([0.5, 0.2, 0.0])
    cam[0, 2] = torch.tensor([0.1, 0.3, 0.0])
    seeds = seed_masks(cam, torch.ones(1, 3, 1, 1), bg_scale=0.3)
    # scaled background 0.27: pixel 0 -> class 1, pixel 1 -> class 2, pixel 2 -> bg
    assert seeds[0, :, 0].argmax(0).tolist() == [1, 2, 0]
    masked = seed_masks(cam, torch.tensor([1.0, 1.0, 0.0]).view(1, 3, 1, 1))
    assert masked[0, 2].sum() == 0 and masked[0, 1, 0, 0] == 1


def test_batched_prototypes_match_naive_masked_average():
    torch.manual_seed(0)
    feats = torch.randn(2, 6, 5, 4)
    seeds = (torch.rand(2, 3, 5, 4) > 0.5).float()
    seeds[1, 2] = 0  # an empty seed
    protos = masked_prototypes(feats, seeds)
    assert protos.shape == (2, 3, 6)
    for n in range(2):
        for k in range(3):
            naive = (feats[n] * seeds[n, k]).sum(dim=(1, 2)) / (5 * 4)
            torch.testing.assert_close(protos[n, k], naive)
    assert protos[1, 2].abs().sum() == 0


def test_prototype_cam_matches_cosine_similarity_and_zero_prototype():
    torch.manual_seed(1)
    feats = torch.randn(2, 6, 5, 4)
    protos = torch.randn(2, 3, 6)
    protos[0, 1] = 0
    cam = prototype_cam(feats, protos)
    reference = F.relu(torch.cosine_similarity(
        feats[:, None], protos[:, :, :, None, None], dim=2))
    torch.testing.assert_close(cam, reference)
    assert cam[0, 1].abs().sum() == 0 and torch.isfinite(cam).all()


def test_max_normalize_peaks_below_one():
    maps = torch.rand(2, 3, 4, 4) * 5
    normed = max_normalize(maps)
    peaks = normed.amax(dim=(2, 3))
    torch.testing.assert_close(peaks, maps.amax(dim=(2, 3)) / (maps.amax(dim=(2, 3)) + 1e-5))
    assert torch.isfinite(max_normalize(torch.zeros(1, 1, 2, 2))).all()
