# Copyright (c) mmsfc contributors. All rights reserved.
"""Dense CRF on label maps and the authors' CAM → pseudo-label rule (docs/method_notes.md §13).

Plain numpy functions (no registry, no runner), so they also run in worker
processes and outside mmsfc.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .cam_rule import background_rule

#: Label of pixels whose class the two CRF passes disagree on.
UNCERTAIN = 255


def _pydensecrf():
    try:
        import pydensecrf.densecrf as dcrf
        import pydensecrf.utils as crf_utils
    except ImportError as e:
        raise ImportError(
            'the dense CRF needs the package pydensecrf2 (import name pydensecrf): '
            'pip install pydensecrf2==1.1') from e
    return dcrf, crf_utils


@dataclass(frozen=True)
class CRFParams:
    """Parameters of :func:`crf_labels` (defaults: the SFC code, docs/method_notes.md §13).

    Attributes:
        iterations (int): Mean-field iterations (12 in SFC, 10 in SIPE).
        gt_prob (float): Confidence of the input labels in the unary.
        gaussian_sxy (float): Spatial std of the smoothness kernel.
        gaussian_compat (float): Weight of the smoothness kernel.
        bilateral_sxy (float): Spatial std of the appearance kernel.
        bilateral_srgb (float): Colour std of the appearance kernel.
        bilateral_compat (float): Weight of the appearance kernel.
    """
    iterations: int = 12
    gt_prob: float = 0.7
    gaussian_sxy: float = 3
    gaussian_compat: float = 3
    bilateral_sxy: float = 50
    bilateral_srgb: float = 5
    bilateral_compat: float = 10


#: deeplab-pytorch's test-time CRF (docs/method_notes.md §15): 10 iterations, pos_w 3,
#: pos_xy_std 1, bi_w 4, bi_xy_std 67, bi_rgb_std 3.
DEEPLAB_CRF = CRFParams(iterations=10, gaussian_sxy=1, gaussian_compat=3, bilateral_sxy=67,
                        bilateral_srgb=3, bilateral_compat=4)


def crf_labels(image: np.ndarray, labels: np.ndarray, num_labels: int,
               params: Optional[CRFParams] = None) -> np.ndarray:
    """Refine a label map with a fully connected CRF (pydensecrf).

    Args:
        image (np.ndarray): RGB uint8 image of shape ``(H, W, 3)``.
        labels (np.ndarray): Labels ``0..num_labels-1`` of shape ``(H, W)``.
        num_labels (int): Number of labels.
        params (CRFParams, optional): CRF parameters; None for the defaults.

    Returns:
        np.ndarray: int64 labels of shape ``(H, W)``.
    """
    if num_labels < 2:
        return np.zeros(labels.shape, np.int64)
    params = params or CRFParams()
    _, crf_utils = _pydensecrf()
    unary = crf_utils.unary_from_labels(labels, num_labels, gt_prob=params.gt_prob,
                                        zero_unsure=False)
    return _inference(image, unary, num_labels, params)


def crf_probabilities(image: np.ndarray, probs: np.ndarray,
                      params: Optional[CRFParams] = None) -> np.ndarray:
    """Refine class probabilities with a fully connected CRF (test-time CRF).

    Args:
        image (np.ndarray): RGB uint8 image of shape ``(H, W, 3)``.
        probs (np.ndarray): Softmax probabilities of shape ``(C, H, W)``.
        params (CRFParams, optional): CRF parameters (``gt_prob`` unused);
            :data:`DEEPLAB_CRF` are deeplab-pytorch's.

    Returns:
        np.ndarray: int64 labels of shape ``(H, W)``.
    """
    _, crf_utils = _pydensecrf()
    unary = crf_utils.unary_from_softmax(np.ascontiguousarray(probs, dtype=np.float32))
    return _inference(image, np.ascontiguousarray(unary), probs.shape[0], params)


def _inference(image: np.ndarray, unary: np.ndarray, num_labels: int,
               params: Optional[CRFParams]) -> np.ndarray:
    params = params or CRFParams()
    dcrf, _ = _pydensecrf()
    height, width = image.shape[:2]
    crf = dcrf.DenseCRF2D(width, height, num_labels)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(sxy=params.bilateral_sxy, srgb=params.bilateral_srgb,
                             rgbim=np.ascontiguousarray(image, dtype=np.uint8),
                             compat=params.bilateral_compat)
    q = np.asarray(crf.inference(params.iterations)).reshape(num_labels, height, width)
    return q.argmax(axis=0)


def cams_to_crf_label(image: np.ndarray, keys: np.ndarray, cam_w: np.ndarray,
                      cam_p: np.ndarray, alpha: float = 0.7, weak_bg_scale: float = 0.5,
                      bg_offset: float = 0.4, fg_scale: float = 2.0,
                      params: Optional[CRFParams] = None) -> np.ndarray:
    """Pseudo label from CAMs with two CRF passes (``cam2ir``, docs/method_notes.md §13).

    ``M = M_W' + alpha * M_P'`` with ``M'`` the background rule of docs/method_notes.md §12. Pass 1
    runs the CRF on ``argmax M``; pass 2 on ``argmax M`` with the background
    multiplied by ``weak_bg_scale``. Where pass 1 says foreground its class is
    kept; where both say background the pixel is background (0); where only
    pass 2 says foreground the pixel is uncertain (255).

    Args:
        image (np.ndarray): RGB uint8 image of shape ``(H, W, 3)``.
        keys (np.ndarray): Class index of each stored channel, ``(C,)``,
            starting with 0 (background).
        cam_w (np.ndarray): Max-normalised ``M_W`` of shape ``(C, H, W)``.
        cam_p (np.ndarray): Max-normalised ``M_P`` of shape ``(C, H, W)``.
        alpha (float): Weight of ``M_P`` (0.7 in ``cam2ir``).
        weak_bg_scale (float): Background factor of pass 2.
        bg_offset (float): Background offset of the background rule.
        fg_scale (float): Foreground factor of the background rule.
        params (CRFParams, optional): CRF parameters; None for the defaults.

    Returns:
        np.ndarray: uint8 labels of shape ``(H, W)``: 0, classes, or 255.
    """
    keys = np.asarray(keys)
    scores = (background_rule(cam_w.astype(np.float32), bg_offset, fg_scale) +
              alpha * background_rule(cam_p.astype(np.float32), bg_offset, fg_scale))
    fg_conf = keys[crf_labels(image, scores.argmax(axis=0), len(keys), params)]
    scores[0] *= weak_bg_scale
    bg_conf = keys[crf_labels(image, scores.argmax(axis=0), len(keys), params)]
    label = fg_conf.astype(np.uint8)
    label[(fg_conf == 0) & (bg_conf != 0)] = UNCERTAIN
    return label
