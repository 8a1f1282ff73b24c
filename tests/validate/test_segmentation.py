"""Segmentation metrics on masks with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pneumolens.errors import InputError
from pneumolens.validate.segmentation import hd95, segmentation_metrics, summarize


def cube(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def test_overlap_metrics_of_shifted_cubes():
    truth = cube((20, 20, 20), (5, 5, 5), (15, 15, 15))  # 1000 voxels
    pred = cube((20, 20, 20), (7, 5, 5), (17, 15, 15))  # shifted 2 along z: overlap 800
    m = segmentation_metrics(pred, truth)
    assert m.dice == pytest.approx(2 * 800 / 2000)
    assert m.iou == pytest.approx(800 / 1200)
    assert m.sensitivity == pytest.approx(0.8)
    assert m.precision == pytest.approx(0.8)
    assert m.empty == ""


@pytest.mark.parametrize(("spacing", "expected"), [((1.0, 1.0, 1.0), 2.0), ((2.5, 0.7, 0.7), 5.0)])
def test_hd95_of_shifted_cubes_scales_with_spacing(spacing, expected):
    truth = cube((20, 20, 20), (5, 5, 5), (15, 15, 15))
    pred = cube((20, 20, 20), (7, 5, 5), (17, 15, 15))
    # The z faces move 2 voxels; most surface points of the sides are on the other surface
    # (distance 0), but the top/bottom faces are 2 voxels off: >5 % of surface points, so the
    # 95th percentile is the shift, 2 voxels * z spacing.
    assert hd95(pred, truth, spacing=spacing) == pytest.approx(expected)


def test_hd95_2d():
    truth = cube((30, 30), (5, 5), (25, 25))
    pred = cube((30, 30), (5, 8), (25, 28))
    assert hd95(pred, truth, spacing=(1.0, 0.5)) == pytest.approx(1.5)


def test_identical_masks_are_perfect():
    truth = cube((10, 10), (2, 2), (6, 6))
    m = segmentation_metrics(truth, truth)
    assert (m.dice, m.iou, m.sensitivity, m.precision, m.hd95) == (1.0, 1.0, 1.0, 1.0, 0.0)


@pytest.mark.parametrize(
    ("pred_empty", "truth_empty", "both_empty", "expected", "kind"),
    [
        (True, True, "one", (1.0, 1.0, math.nan, math.nan, 0.0), "both"),
        (True, True, "nan", (math.nan, math.nan, math.nan, math.nan, math.nan), "both"),
        (False, True, "one", (0.0, 0.0, math.nan, 0.0, math.nan), "truth"),
        (True, False, "one", (0.0, 0.0, 0.0, math.nan, math.nan), "prediction"),
    ],
)
def test_empty_mask_rule(pred_empty, truth_empty, both_empty, expected, kind):
    full = cube((8, 8), (2, 2), (5, 5))
    empty = np.zeros((8, 8), bool)
    m = segmentation_metrics(
        empty if pred_empty else full, empty if truth_empty else full, both_empty=both_empty
    )
    np.testing.assert_array_equal([m.dice, m.iou, m.sensitivity, m.precision, m.hd95], expected)
    assert m.empty == kind


@pytest.mark.parametrize(
    ("pred", "truth", "kwargs", "match"),
    [
        (np.zeros((4, 4)), np.zeros((4, 5)), {}, "differs from truth shape"),
        (np.zeros(4), np.zeros(4), {}, "2D or 3D"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"spacing": (1.0,)}, "spacing"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"both_empty": "zero"}, "both_empty"),
    ],
)
def test_bad_input(pred, truth, kwargs, match):
    with pytest.raises(InputError, match=match):
        segmentation_metrics(pred, truth, **kwargs)


def test_summary():
    s = summarize([0.8, 0.9, np.nan, 0.7, 1.0])
    assert s.n == 4
    assert s.mean == pytest.approx(0.85)
    assert s.sd == pytest.approx(np.std([0.8, 0.9, 0.7, 1.0], ddof=1))
    assert (s.q1, s.median, s.q3) == pytest.approx((0.775, 0.85, 0.925))
    # t-based CI: mean +/- t(0.975, 3) * sd / 2, t(0.975, 3) = 3.182446.
    assert s.ci == pytest.approx((0.85 - 3.182446 * s.sd / 2, 0.85 + 3.182446 * s.sd / 2), abs=1e-6)
    assert summarize([np.nan]).n == 0


def test_dice_bootstrap_point_values_and_ci() -> None:
    from pneumolens.validate.segmentation import dice_bootstrap

    # Two slices: Dice 1 (10 of 10) and Dice 0 (nothing found of 30); an empty/empty slice counts 1.
    counts = np.array([[10, 10, 10], [0, 0, 30], [0, 0, 0]])
    b = dice_bootstrap(counts, n_boot=500, seed=1)
    assert b.n == 3
    assert b.pooled == pytest.approx(2 * 10 / (10 + 40))
    assert b.mean == pytest.approx(2 / 3)
    assert b.pooled_ci[0] <= b.pooled <= b.pooled_ci[1]
    assert 0.0 <= b.mean_ci[0] < b.mean_ci[1] <= 1.0
    one = dice_bootstrap(np.array([[5, 5, 5]] * 4), n_boot=50)
    assert one.pooled_ci == (1.0, 1.0)


def test_paired_dice_difference() -> None:
    from pneumolens.validate.segmentation import dice_difference_bootstrap

    rng = np.random.default_rng(0)
    truth = rng.integers(50, 100, size=40)
    a = np.stack([truth, truth, truth], axis=1)  # perfect
    b = np.stack([truth // 2, truth // 2, truth], axis=1)  # finds half, no false positives
    d = dice_difference_bootstrap(a, b, n_boot=300)
    assert d["difference"] == pytest.approx(1.0 - 2 * (truth // 2).sum() / ((truth // 2).sum() + truth.sum()))
    assert d["ci"][0] > 0 and d["share_a_better"] == 1.0
    with pytest.raises(InputError):
        dice_difference_bootstrap(a, b[:-1])
