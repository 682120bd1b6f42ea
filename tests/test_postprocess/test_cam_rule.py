# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmsfc.postprocess import background_rule, channel_argmax


@pytest.mark.parametrize('shape, dim', [((3, 37, 50), 0), ((21, 19, 23), 0),
                                        ((2, 21, 9, 11), 1), ((4, 5, 6), 2)])
@pytest.mark.parametrize('keepdim', [False, True])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16, torch.float16, torch.int64])
def test_channel_argmax_equals_argmax(shape, dim, keepdim, dtype):
    gen = torch.Generator().manual_seed(0)
    # few distinct values: most pixels tie between several classes
    scores = torch.randint(0, 3, shape, generator=gen).to(dtype)
    if dtype.is_floating_point:  # a NaN counts as the maximum; the first of several wins
        nan = torch.rand(shape, generator=gen) < 0.3
        assert (nan.sum(dim) > 1).any()
        scores[nan] = float('nan')
    expected = torch.argmax(scores, dim=dim, keepdim=keepdim)
    out = channel_argmax(scores, dim=dim, keepdim=keepdim)
    assert out.dtype == torch.int64
    assert torch.equal(out, expected)


def test_channel_argmax_first_index_on_ties():
    scores = torch.zeros(4, 6, 7)
    scores[2:, :3] = 1.0  # classes 2 and 3 tie at 1 in the first three rows
    out = channel_argmax(scores)
    assert (out[:3] == 2).all() and (out[3:] == 0).all()  # elsewhere all four tie at 0


def test_background_rule_on_arrays_and_tensors():
    cam = np.array([[[0.2]], [[0.3]], [[0.1]]], dtype=np.float32)
    out = background_rule(cam, bg_offset=0.4, fg_scale=2.0)
    np.testing.assert_allclose(out[:, 0, 0], [0.6, 0.6, 0.2], rtol=1e-6)
    torch.testing.assert_close(background_rule(torch.from_numpy(cam)), torch.from_numpy(out))
