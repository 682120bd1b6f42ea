# Copyright (c) mmsfc contributors. All rights reserved.
from unittest.mock import patch

import pytest
import torch
import torch.nn.functional as F

from mmsfc.models.losses import MSDWLoss, distribution_coefficients

# The authors' hard-coded train_aug image counts and their DC (docs/method_notes.md §7),
# VOC class order.
VOC_COUNTS = [590, 504, 705, 468, 714, 393, 1150, 1005, 1228, 267, 613, 1188, 445, 492, 4155,
              522, 300, 649, 503, 567]
VOC_DEMAND = [7536, 7698, 8062, 8032, 8134, 9036, 12784, 11044, 13956, 11118, 7582, 13316, 8308,
              7792, 66642, 7626, 10524, 7726, 7704, 7536]
VOC_DC = [0.8065, 0.9025, 0.7726, 0.9809, 0.7732, 1.2084, 0.8725, 0.8318, 0.9068, 1.7694,
          0.7929, 0.8870, 1.0424, 0.9259, 1.5451, 0.8765, 1.5955, 0.7801, 0.9042, 0.8257]


def test_dc_reproduces_voc_table():
    counts = torch.tensor(VOC_COUNTS, dtype=torch.float64)
    demand = (counts[:, None] - counts[None]).abs().sum(1)
    assert demand.tolist() == VOC_DEMAND
    dc = distribution_coefficients(VOC_COUNTS, n_ibr=4, c_ibr=3, n_iter=660)
    torch.testing.assert_close(dc, torch.tensor(VOC_DC, dtype=torch.float64), atol=1e-4, rtol=0)
    assert dc.mean().item() == pytest.approx(1.0)


def test_dc_sensitivity_matches_reference_notes():
    # docs/method_notes.md §7: with C_IBR = 1.555 (VOC's mean labels per image) person drops
    # to ~1.30 and cow rises to ~1.99.
    dc = distribution_coefficients(VOC_COUNTS, n_ibr=4, c_ibr=1.555, n_iter=660)
    assert dc[14].item() == pytest.approx(1.30, abs=0.01)
    assert dc[9].item() == pytest.approx(1.99, abs=0.01)


def test_dc_zero_count_class_warns_and_stays_finite():
    with pytest.warns(UserWarning, match="'cat': no training image"):
        dc = distribution_coefficients([10, 0, 5], class_names=('dog', 'cat', 'cow'))
    with pytest.warns(UserWarning, match='class index 2: no training image'):
        distribution_coefficients([10, 0, 5])  # 1-based like the dataset's classes
    assert torch.isfinite(dc).all() and dc[1] == dc.max()
    with pytest.raises(ValueError, match='n_ibr'):
        with pytest.warns(UserWarning):
            distribution_coefficients([10, 0, 5], n_ibr=0)


def test_dc_equal_counts_are_ones():
    torch.testing.assert_close(distribution_coefficients([7, 7, 7]),
                               torch.ones(3, dtype=torch.float64))


def test_loss_matches_hand_computation():
    torch.manual_seed(0)
    counts = [30, 10, 5]
    loss = MSDWLoss(num_classes=3, class_counts=counts, n_ibr=4, n_iter=660)
    dc = distribution_coefficients(counts).float()
    cam_w, cam_p = torch.rand(2, 4, 8, 8), torch.rand(2, 4, 8, 8) * 3
    cam_w_half = torch.rand(2, 4, 4, 4)
    labels = torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    out = loss(cam_w, cam_p, cam_w_half, labels)

    p_norm = cam_p / (cam_p.amax((2, 3), keepdim=True) + 1e-5)
    weights_p = torch.cat([torch.ones(1), dc]).view(1, 4, 1, 1)
    expected_p = 1.6 * ((cam_w - p_norm).abs() * weights_p).mean()
    down = F.interpolate(cam_w, scale_factor=0.5, mode='bilinear', align_corners=True)
    y = labels[:, :, None, None]
    expected_w = 0.8 * ((down[:, 1:] * y - cam_w_half[:, 1:] * y).abs()
                        * dc.view(1, 3, 1, 1)).mean()
    torch.testing.assert_close(out['loss_dw_p'], expected_p)
    torch.testing.assert_close(out['loss_dw_w'], expected_w)


def test_ablation_switches():
    cam_w, cam_p, half = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.rand(1, 3, 2, 2)
    labels = torch.ones(1, 2)
    with_dc = MSDWLoss(num_classes=2, class_counts=[100, 1], n_ibr=4, n_iter=660)
    no_dc = MSDWLoss(num_classes=2, dc_in_p=False, dc_in_w=False)
    assert not no_dc.needs_dc
    a, b = with_dc(cam_w, cam_p, half, labels), no_dc(cam_w, cam_p, half, labels)
    assert not torch.allclose(a['loss_dw_p'], b['loss_dw_p'])
    only_w = MSDWLoss(num_classes=2, class_counts=[100, 1], n_ibr=4, n_iter=660, loss_weight_p=0)
    assert set(only_w(cam_w, None, half, labels)) == {'loss_dw_w'}
    only_p = MSDWLoss(num_classes=2, class_counts=[100, 1], n_ibr=4, n_iter=660, loss_weight_w=0)
    assert set(only_p(cam_w, cam_p, half, labels)) == {'loss_dw_p'}


def test_missing_dc_raises_clear_error_and_counts_checked():
    loss = MSDWLoss(num_classes=2)
    with pytest.raises(RuntimeError, match='DistributionCoefficientHook'):
        loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.rand(1, 3, 2, 2),
             torch.ones(1, 2))
    with pytest.raises(ValueError, match='expected 2 class counts'):
        loss.set_class_counts([1, 2, 3])
    with pytest.raises(ValueError, match='needs n_ibr and n_iter'):
        loss.set_class_counts([1, 2])


def test_dc_checked_once_per_value_however_it_is_set():
    """DC assigned directly works; the NaN check runs once per new value, not every step."""
    loss = MSDWLoss(num_classes=2)
    args = (torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.rand(1, 3, 2, 2),
            torch.ones(1, 2))
    loss.dc = torch.tensor([0.5, 1.5])  # e.g. a script or a test, without the hook
    first = loss(*args)
    with patch.object(torch, 'isnan', wraps=torch.isnan) as isnan:
        second = loss(*args)
    assert isnan.call_count == 0
    for key, value in first.items():
        assert torch.equal(second[key], value), key
    with torch.no_grad():
        loss.dc.fill_(float('nan'))  # in place: a new value, checked again
    with pytest.raises(RuntimeError, match='no distribution coefficients'):
        loss(*args)
