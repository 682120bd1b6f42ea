# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmsfc.postprocess import background_rule, channel_argmax, foreground_margin, otsu_bg_offset


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


def test_foreground_margin_is_the_offset_the_rule_switches_at():
    rng = np.random.default_rng(0)
    cam = rng.random((4, 6, 7)).astype(np.float32)
    margin = foreground_margin(cam, fg_scale=2.0)
    for offset in (0.1, 0.4, 0.9):
        is_fg = background_rule(cam.copy(), offset, 2.0).argmax(0) > 0
        np.testing.assert_array_equal(is_fg, margin > offset)
    torch_margin = foreground_margin(torch.from_numpy(cam)[None], fg_scale=2.0)
    np.testing.assert_allclose(torch_margin[0].numpy(), margin, rtol=0, atol=1e-6)


def test_otsu_bg_offset_splits_two_modes_without_labels():
    rng = np.random.default_rng(1)
    # background margins around -0.2, objects around 1.5: Otsu's offset
    # separates the two modes (the fixed 0.4 would not if the maps were shifted)
    images = [np.concatenate([rng.normal(-0.2, 0.1, 700), rng.normal(1.5, 0.2, 300)])
              for _ in range(3)]
    offset = otsu_bg_offset(iter(images))
    background = np.concatenate([m[:700] for m in images])
    objects = np.concatenate([m[700:] for m in images])
    assert (background <= offset).mean() > 0.99 and (objects > offset).mean() > 0.99
    # shifting every margin shifts the offset with it (a backbone whose maps are larger)
    shifted = otsu_bg_offset(m + 0.8 for m in images)
    assert abs(shifted - (offset + 0.8)) < 0.05
    with pytest.raises(ValueError, match='no margin'):
        otsu_bg_offset([])
