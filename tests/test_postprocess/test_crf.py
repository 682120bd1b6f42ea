# Copyright (c) mmsfc contributors. All rights reserved.
import sys

import cv2
import numpy as np
import pytest

import mmsfc.postprocess.crf as crf_module
from mmsfc.postprocess import UNCERTAIN, cams_to_crf_label, crf_labels


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_crf_moves_blurred_square_boundary_to_the_edge():
    rng = np.random.default_rng(0)
    truth = np.zeros((64, 64), bool)
    truth[16:48, 16:48] = True
    image = np.where(truth[..., None], [200, 60, 60], [40, 90, 160]).astype(np.float64)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    # a blurred, shifted and too large CAM of the square
    cam = cv2.GaussianBlur(np.roll(truth, (4, 5), axis=(0, 1)).astype(np.float32), (0, 0), 6)
    cam /= cam.max()
    coarse = cam > 0.25
    refined = crf_labels(image, coarse.astype(np.int64), 2).astype(bool)
    assert iou(refined, truth) > iou(coarse, truth) + 0.05
    assert iou(refined, truth) > 0.85


def test_two_pass_rule_marks_uncertain_pixels(monkeypatch):
    # identity CRF: the rule alone decides
    monkeypatch.setattr(crf_module, 'crf_labels', lambda image, labels, n, params=None: labels)
    keys = np.array([0, 5])
    cam_w = np.zeros((2, 1, 3), np.float32)
    cam_w[0] = [1.0, 0.8, 0.1]   # background
    cam_w[1] = [0.0, 0.5, 0.9]   # class 5
    cam_p = np.zeros_like(cam_w)
    label = cams_to_crf_label(np.zeros((1, 3, 3), np.uint8), keys, cam_w, cam_p, alpha=0.0)
    # pixel 0: background 1.4 vs 0.0 -> 0; pixel 1: 1.2 vs 1.0, but 0.6 vs 1.0 with the
    # weakened background -> uncertain; pixel 2: 0.5 vs 1.8 -> class 5
    assert label.tolist() == [[0, UNCERTAIN, 5]]


def test_single_label_and_missing_package(monkeypatch):
    assert (crf_labels(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int64), 1) == 0).all()
    monkeypatch.setitem(sys.modules, 'pydensecrf.densecrf', None)
    with pytest.raises(ImportError, match='pydensecrf2'):
        crf_labels(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int64), 2)
