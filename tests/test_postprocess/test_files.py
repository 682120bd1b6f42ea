# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
import pytest

from mmsfc.postprocess import (
    is_valid_cam_file,
    is_valid_label_png,
    load_cams,
    load_label_png,
    save_cams,
    save_label_png,
)


def test_cam_file_round_trip_float16(tmp_path):
    rng = np.random.default_rng(0)
    keys = np.array([0, 3, 7])
    cam_w, cam_p = rng.random((3, 5, 6)), rng.random((3, 5, 6))
    path = str(tmp_path / 'sub' / 'img.npz')
    save_cams(path, keys, cam_w, cam_p)
    assert is_valid_cam_file(path)
    got_keys, got_w, got_p = load_cams(path)
    np.testing.assert_array_equal(got_keys, keys)
    np.testing.assert_allclose(got_w, cam_w, atol=1e-3)  # float16
    np.testing.assert_allclose(got_p, cam_p, atol=1e-3)
    assert [p.name for p in (tmp_path / 'sub').iterdir()] == ['img.npz']  # no temporaries
    with pytest.raises(ValueError, match='inconsistent'):
        save_cams(path, keys[:2], cam_w, cam_p)


def test_invalid_files_detected(tmp_path):
    truncated = tmp_path / 'bad.npz'
    truncated.write_bytes(b'PK\x03\x04 truncated')
    assert not is_valid_cam_file(str(truncated))
    assert not is_valid_cam_file(str(tmp_path / 'missing.npz'))
    with pytest.raises(ValueError, match='bad.npz'):
        load_cams(str(truncated))
    bad_png = tmp_path / 'bad.png'
    bad_png.write_bytes(b'\x89PNG garbage')
    assert not is_valid_label_png(str(bad_png))


def test_label_png_round_trip_with_palette(tmp_path):
    label = np.array([[0, 1, 255], [2, 2, 0]], np.uint8)
    path = str(tmp_path / 'a.png')
    save_label_png(path, label, [(0, 0, 0), (128, 0, 0), (0, 128, 0)])
    np.testing.assert_array_equal(load_label_png(path), label)
    from PIL import Image
    with Image.open(path) as png:
        assert png.mode == 'P' and png.getpalette()[3:6] == [128, 0, 0]
