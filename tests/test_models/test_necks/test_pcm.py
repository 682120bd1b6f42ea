# Copyright (c) mmsfc contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmsfc.models.necks import SFCPCM


def explicit_pcm(pcm, cam, image, feat, steps):
    """Pixel-by-pixel reference of docs/method_notes.md §4."""
    h, w = feat.shape[2:]
    guide = torch.cat([F.interpolate(image, (h, w), mode='bilinear', align_corners=True), feat], 1)
    weight = pcm.proj.weight[:, :, 0, 0]
    pixels = [(i, j) for i in range(h) for j in range(w)]
    emb = []
    for i, j in pixels:
        e = weight @ guide[0, :, i, j]
        emb.append(e / (e.norm() + 1e-5))
    n = len(pixels)
    affinity = torch.zeros(n, n)
    for a in range(n):
        for b in range(n):
            affinity[a, b] = max(float(emb[a] @ emb[b]), 0.0)
    transition = torch.zeros(n, n)
    for b in range(n):
        column = affinity[:, b].sum()
        for a in range(n):
            transition[a, b] = affinity[a, b] / (column + 1e-5)
    values = cam[0].reshape(cam.shape[1], n)
    for _ in range(steps):
        new = torch.zeros_like(values)
        for b in range(n):
            for a in range(n):
                new[:, b] += values[:, a] * transition[a, b]
        values = new
    return values.reshape(cam.shape)


@pytest.mark.parametrize('steps', [1, 2])
def test_pcm_equals_explicit_propagation(steps):
    torch.manual_seed(0)
    pcm = SFCPCM(in_channels=3 + 4, channels=5, num_steps=steps)
    cam = torch.rand(1, 3, 2, 3)
    image = torch.randn(1, 3, 8, 12)
    feat = torch.randn(1, 4, 2, 3)
    with torch.no_grad():
        out = pcm(cam, image, feat)
        expected = explicit_pcm(pcm, cam, image, feat, steps)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-6)


def test_pcm_default_is_two_steps_and_not_detached():
    pcm = SFCPCM(in_channels=3 + 4, channels=5)
    assert pcm.num_steps == 2
    cam = torch.rand(1, 3, 2, 2, requires_grad=True)
    feat = torch.randn(1, 4, 2, 2, requires_grad=True)
    pcm(cam, torch.randn(1, 3, 4, 4), feat).sum().backward()
    assert cam.grad is not None and feat.grad is not None
    assert pcm.proj.weight.grad is not None and pcm.proj.bias is None


def test_pcm_rejects_zero_steps():
    with pytest.raises(ValueError, match='num_steps'):
        SFCPCM(num_steps=0)


def test_pcm_gradients_equal_those_through_the_transition_matrix():
    """M_W = cam · T · T with T built explicitly: same values and gradients."""
    torch.manual_seed(1)
    pcm = SFCPCM(in_channels=3 + 6, channels=8)
    cam = torch.rand(2, 4, 5, 6, requires_grad=True)
    image = torch.randn(2, 3, 20, 24)
    feat = torch.randn(2, 6, 5, 6, requires_grad=True)
    weights = torch.randn(2, 4, 5, 6)
    out = pcm(cam, image, feat)
    grads = torch.autograd.grad((out * weights).sum(), (cam, feat, pcm.proj.weight))

    guide = torch.cat([F.interpolate(image, (5, 6), mode='bilinear', align_corners=True),
                       feat], dim=1)
    emb = F.conv2d(guide, pcm.proj.weight).flatten(2)
    emb = emb / (emb.norm(dim=1, keepdim=True) + 1e-5)
    aff = F.relu(emb.transpose(1, 2) @ emb)
    transition = aff / (aff.sum(dim=1, keepdim=True) + 1e-5)
    expected = (cam.flatten(2) @ transition @ transition).view_as(cam)
    expected_grads = torch.autograd.grad((expected * weights).sum(),
                                         (cam, feat, pcm.proj.weight))
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    for grad, ref in zip(grads, expected_grads):
        torch.testing.assert_close(grad, ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('blocks', [2, 3, 50])
def test_symmetric_blocks_equal_the_whole_affinity(blocks):
    """Blocks on and above the diagonal only (a length that does not divide, two
    images, more blocks than pixels): the refined CAM of the whole S."""
    torch.manual_seed(2)
    pcm = SFCPCM(in_channels=3 + 6, channels=8)
    cam = torch.rand(2, 4, 5, 7)
    image = torch.randn(2, 3, 20, 28)
    feat = torch.randn(2, 6, 5, 7)
    with torch.no_grad():
        whole = pcm(cam, image, feat)
        blocked = pcm(cam, image, feat, symmetric_blocks=blocks)
    assert whole.abs().max() > 0.1
    torch.testing.assert_close(blocked, whole, atol=1e-6, rtol=1e-5)
