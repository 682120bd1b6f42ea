# Copyright (c) mmsfc contributors. All rights reserved.
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsfc.models.utils.sparse_resize import bilinear_taps, resize_pointwise


@pytest.mark.parametrize('in_size, out_size', [(188, 47), (250, 63), (47, 12), (13, 3), (7, 7),
                                               (5, 9)])
def test_taps_reproduce_torch_interpolation(in_size, out_size):
    """One-hot inputs: each output is (1 - w1) at i0 plus w1 at i1, as F.interpolate."""
    index0, index1, weight1 = bilinear_taps(in_size, out_size)
    basis = torch.eye(in_size)[:, None, None, :]  # (in, 1, 1, in): pixel k set
    resized = F.interpolate(basis, size=(1, out_size), mode='bilinear',
                            align_corners=False)[:, 0, 0]  # (in, out)
    expected = torch.zeros(in_size, out_size)
    expected[index0, torch.arange(out_size)] += 1 - weight1
    expected[index1, torch.arange(out_size)] += weight1
    torch.testing.assert_close(resized, expected, atol=1e-6, rtol=0)


def _projection(channels_in=6, channels_out=5, seed=0):
    torch.manual_seed(seed)
    conv = nn.Conv2d(channels_in, channels_out, 1, bias=False)
    seen = []

    def project(x):
        seen.append(tuple(x.shape[2:]))
        y = conv(x)
        return y / (y.norm(dim=1, keepdim=True) + 1e-5)
    return conv, project, seen


@pytest.mark.parametrize('in_hw, out_hw, reads_fewer', [
    ((64, 64), (16, 16), True),    # stride 4 -> 16: a quarter of the pixels
    ((47, 63), (12, 16), True),    # scales that do not divide
    ((13, 30), (3, 5), True),
    ((32, 32), (16, 16), False),   # by 2: every pixel is read
    ((16, 16), (16, 16), False),   # the identity
])
def test_equals_projecting_everything(in_hw, out_hw, reads_fewer):
    conv, project, seen = _projection()
    inputs = torch.randn(2, 6, *in_hw, requires_grad=True)
    expected = F.interpolate(project(inputs), size=out_hw, mode='bilinear', align_corners=False)
    seen.clear()
    out = resize_pointwise(project, inputs, out_hw)
    pixels = seen[0][0] * seen[0][1]
    assert (pixels <= 0.5 * in_hw[0] * in_hw[1]) == reads_fewer
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    weights = torch.randn_like(expected)
    grads = torch.autograd.grad((out * weights).sum(), (inputs, conv.weight))
    ref = torch.autograd.grad((expected * weights).sum(), (inputs, conv.weight))
    for grad, one_ref in zip(grads, ref):
        torch.testing.assert_close(grad, one_ref, atol=1e-5 * one_ref.abs().max().item(),
                                   rtol=0)


def test_channels_last_input_gives_the_same_result():
    conv, project, _ = _projection()
    inputs = torch.randn(2, 6, 47, 63)
    weights = torch.randn(2, 5, 12, 16)
    results, contiguous = [], []

    def fn(x):  # the gathered pixels reach fn in the plain layout
        contiguous.append(x.is_contiguous())
        return project(x)

    for memory_format in (torch.contiguous_format, torch.channels_last):
        one = inputs.contiguous(memory_format=memory_format).requires_grad_()
        out = resize_pointwise(fn, one, (12, 16))
        grads = torch.autograd.grad((out * weights).sum(), (one, conv.weight))
        results.append((out, *grads))
    assert contiguous == [True, True]
    for ours, reference in zip(*results):
        torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-6)
