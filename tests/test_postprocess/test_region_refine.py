# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
import pytest

from mmsfc.postprocess.region_refine import RegionRule, as_region_stack, refine_with_regions


def _both(labels, region_map, rule=None):
    """The result for the region map, checked equal to that of its mask stack."""
    by_map = refine_with_regions(labels, region_map, rule)
    by_stack = refine_with_regions(labels, as_region_stack(region_map, labels.shape), rule)
    np.testing.assert_array_equal(by_map, by_stack)
    assert by_map.dtype == np.uint8
    return by_map


def test_majority_clause_claims_a_region_and_grows_the_class():
    labels = np.array([[1, 1, 1, 0, 0, 0]], np.uint8)
    regions = np.array([[1, 1, 1, 1, 2, 2]])  # region 1: 3 of 4 pixels in class 1
    out = _both(labels, regions, RegionRule(coverage=2.0))  # clause 2 off
    np.testing.assert_array_equal(out, [[1, 1, 1, 1, 0, 0]])


def test_exactly_half_is_no_majority_and_the_class_pixels_are_dropped():
    labels = np.array([[1, 1, 0, 0, 1, 1, 1, 1]], np.uint8)
    regions = np.array([[1, 1, 1, 1, 2, 2, 2, 2]])  # region 1: 2 of 4 in class 1
    out = _both(labels, regions, RegionRule(coverage=2.0))
    np.testing.assert_array_equal(out, [[0, 0, 0, 0, 1, 1, 1, 1]])
    # a lower majority threshold claims it
    out = _both(labels, regions, RegionRule(majority=0.4, coverage=2.0))
    np.testing.assert_array_equal(out, [[1] * 8])


def test_coverage_clause_claims_a_region_mostly_outside_the_class():
    labels = np.array([[1, 1, 0, 0, 0, 0, 0, 0, 0, 0]], np.uint8)
    regions = np.ones((1, 10), np.int64)  # 2 of 10 pixels in class 1, but all of class 1
    np.testing.assert_array_equal(_both(labels, regions), [[1] * 10])
    # without clause 2 the region is not claimed and class 1 is lost
    np.testing.assert_array_equal(_both(labels, regions, RegionRule(coverage=1.01)), [[0] * 10])
    # the clause needs the set share of the class: 2 of 4 class pixels < 0.85
    labels = np.array([[1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]], np.uint8)
    regions = np.array([[1] * 10 + [0, 0]])
    np.testing.assert_array_equal(_both(labels, regions), [[0] * 10 + [1, 1]])
    np.testing.assert_array_equal(_both(labels, regions, RegionRule(coverage=0.5)), [[1] * 12])


def test_each_region_is_claimed_once_by_the_first_class():
    # region 1 holds all of class 1 (clause 2) and a majority of class 2 (clause 1):
    # class 1 claims it, class 2 cannot, and keeps only its own pixels (later class
    # wins where both write)
    labels = np.array([[1, 2, 2, 2, 0, 0]], np.uint8)
    regions = np.array([[1, 1, 1, 1, 1, 2]])
    np.testing.assert_array_equal(_both(labels, regions), [[1, 2, 2, 2, 1, 0]])
    # with class 1 unable to claim it, class 2 takes the whole region
    np.testing.assert_array_equal(_both(labels, regions, RegionRule(coverage=2.0)),
                                  [[2, 2, 2, 2, 2, 0]])


def test_pixels_no_free_region_covers_keep_their_class():
    labels = np.array([[0, 1, 1, 1, 0, 2, 2]], np.uint8)
    regions = np.array([[1, 1, 0, 0, 0, 2, 0]])  # region 1: half class 1, not claimed
    out = _both(labels, regions)
    np.testing.assert_array_equal(out, [[0, 0, 1, 1, 0, 2, 2]])


def test_uncertain_pixels_count_in_the_region_and_stay_uncertain():
    labels = np.array([[1, 1, 255, 255, 255, 1, 0, 0]], np.uint8)
    regions = np.array([[1, 1, 1, 1, 2, 2, 2, 2]])
    # region 1: 2 of 4 in class 1 (the 255s vote against), region 2: 1 of 4
    rule = RegionRule(coverage=2.0)
    np.testing.assert_array_equal(_both(labels, regions, rule), [[0, 0, 255, 255, 255, 0, 0, 0]])
    np.testing.assert_array_equal(
        _both(labels, regions, RegionRule(coverage=2.0, keep_uncertain=False)), [[0] * 8])
    # a claimed region takes its uncertain pixels; region 2 (1 of 4) is still not claimed
    np.testing.assert_array_equal(
        _both(labels, regions, RegionRule(majority=0.4, coverage=2.0)),
        [[1, 1, 1, 1, 255, 0, 0, 0]])


def test_overlapping_masks_later_class_wins():
    labels = np.array([[1, 1, 0, 2, 2]], np.uint8)
    masks = np.array([[[1, 1, 1, 0, 0]],
                      [[0, 0, 1, 1, 1]]], bool)
    out = refine_with_regions(labels, masks[:, 0][:, None].reshape(2, 1, 5))
    np.testing.assert_array_equal(out, [[1, 1, 2, 2, 2]])
    # a list of masks works as the stack
    np.testing.assert_array_equal(refine_with_regions(labels, list(masks)), out)


def test_random_maps_agree_with_the_mask_stack():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.choice([0, 1, 3, 255], size=(6, 7)).astype(np.uint8)
        regions = rng.integers(0, 5, size=(6, 7))
        _both(labels, regions, RegionRule(majority=rng.uniform(0, 0.9),
                                          coverage=rng.uniform(0.1, 1.2)))


def test_no_regions_and_no_classes():
    labels = np.array([[0, 1, 255]], np.uint8)
    np.testing.assert_array_equal(refine_with_regions(labels, np.zeros((1, 3), int)), labels)
    np.testing.assert_array_equal(refine_with_regions(labels, []), labels)
    zeros = np.zeros((2, 2), np.uint8)
    np.testing.assert_array_equal(refine_with_regions(zeros, np.ones((2, 2), int)), zeros)


def test_bad_input():
    labels = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match='shape'):
        refine_with_regions(labels, np.zeros((3, 2), int))
    with pytest.raises(ValueError, match='integers'):
        refine_with_regions(labels, np.zeros((2, 3), float))
    with pytest.raises(ValueError, match='no region'):
        refine_with_regions(labels, -np.ones((2, 3), int))
    with pytest.raises(ValueError, match='region 1 has shape'):
        refine_with_regions(labels, [np.zeros((2, 3)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match='majority'):
        RegionRule(majority=1.0)
    with pytest.raises(ValueError, match='coverage'):
        RegionRule(coverage=0)
