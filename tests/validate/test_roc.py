"""ROC curves, AUC and partial AUC against pROC's own test expectations on aSAH.

Expected values are typed from pROC's test suite (repository xrobin/pROC):
tests/testthat/helper-coords-expected.R, test-coords.R, test-auc.R; the curves are
``roc(aSAH$outcome, aSAH$<marker>)`` as defined in tests/testthat/helper-rocs.R.
"""

from __future__ import annotations

import numpy as np
import pytest

from pneumolens.errors import InputError
from pneumolens.validate.roc import (
    DirectionWarning,
    partial_auc,
    roc_curve,
    roc_from_groups,
)

# pROC coords(r.s100b, "all"): threshold, tn, tp, fn, fp for all 51 thresholds.
# Source: xrobin/pROC tests/testthat/helper-coords-expected.R (expected.coords).
S100B_COORDS = [
    (-np.inf, 0, 41, 0, 72),
    (0.035, 0, 40, 1, 72),
    (0.045, 5, 40, 1, 67),
    (0.055, 8, 40, 1, 64),
    (0.065, 10, 40, 1, 62),
    (0.075, 16, 37, 4, 56),
    (0.085, 22, 36, 5, 50),
    (0.095, 28, 34, 7, 44),
    (0.105, 35, 32, 9, 37),
    (0.115, 39, 31, 10, 33),
    (0.125, 39, 30, 11, 33),
    (0.135, 42, 28, 13, 30),
    (0.145, 46, 27, 14, 26),
    (0.155, 50, 27, 14, 22),
    (0.165, 53, 26, 15, 19),
    (0.175, 55, 26, 15, 17),
    (0.185, 56, 26, 15, 16),
    (0.205, 58, 26, 15, 14),
    (0.225, 58, 25, 16, 14),
    (0.235, 58, 24, 17, 14),
    (0.245, 59, 24, 17, 13),
    (0.255, 59, 23, 18, 13),
    (0.265, 59, 22, 19, 13),
    (0.275, 59, 21, 20, 13),
    (0.29, 60, 21, 20, 12),
    (0.31, 60, 20, 21, 12),
    (0.325, 61, 19, 22, 11),
    (0.335, 62, 18, 23, 10),
    (0.345, 63, 18, 23, 9),
    (0.365, 63, 17, 24, 9),
    (0.395, 64, 17, 24, 8),
    (0.42, 64, 16, 25, 8),
    (0.435, 65, 16, 25, 7),
    (0.445, 65, 14, 27, 7),
    (0.455, 66, 14, 27, 6),
    (0.465, 67, 14, 27, 5),
    (0.475, 69, 14, 27, 3),
    (0.485, 70, 13, 28, 2),
    (0.495, 70, 12, 29, 2),
    (0.51, 72, 12, 29, 0),
    (0.54, 72, 11, 30, 0),
    (0.57, 72, 10, 31, 0),
    (0.64, 72, 9, 32, 0),
    (0.705, 72, 8, 33, 0),
    (0.725, 72, 6, 35, 0),
    (0.755, 72, 5, 36, 0),
    (0.795, 72, 4, 37, 0),
    (0.84, 72, 3, 38, 0),
    (0.91, 72, 2, 39, 0),
    (1.515, 72, 1, 40, 0),
    (np.inf, 72, 0, 41, 0),
]

# pROC auc() on aSAH. Source: xrobin/pROC tests/testthat/test-auc.R.
FULL_AUC = {"wfns": 0.823678861788618, "ndka": 0.611957994579946}
# (marker, bounds, focus, correct) -> value. Source: xrobin/pROC tests/testthat/test-auc.R.
PARTIAL_AUC = [
    ("wfns", (1, 0.9), "specificity", False, 0.0334417344173442),
    ("wfns", (0.9, 0.8), "specificity", False, 0.0598373983739837),
    ("wfns", (0.5, 0), "specificity", False, 0.488134475939354),
    ("ndka", (1, 0.9), "specificity", False, 0.0107046070460705),
    ("ndka", (0.9, 0.8), "specificity", False, 0.0277777777777778),
    ("ndka", (0.5, 0), "specificity", False, 0.416836043360434),
    ("wfns", (1, 0.9), "sensitivity", False, 0.0400999322493225),
    ("wfns", (0.9, 0.8), "sensitivity", False, 0.0609953703703703),
    ("wfns", (0.5, 0), "sensitivity", False, 0.483358739837398),
    ("ndka", (1, 0.9), "sensitivity", False, 0.0037940379403794),
    ("ndka", (0.9, 0.8), "sensitivity", False, 0.0242547425474255),
    ("ndka", (0.5, 0), "sensitivity", False, 0.428523035230352),
    ("wfns", (1, 0.9), "specificity", True, 0.649693339038653),
    ("wfns", (0.9, 0.8), "specificity", True, 0.763749402199904),
    ("wfns", (0.5, 0), "specificity", True, 0.952537903757416),
    ("ndka", (1, 0.9), "specificity", True, 0.530024247610897),
    ("ndka", (0.9, 0.8), "specificity", True, 0.575163398692811),
    ("ndka", (0.5, 0), "specificity", True, 0.667344173441734),
    ("wfns", (1, 0.9), "sensitivity", True, 0.68473648552275),
    ("wfns", (0.9, 0.8), "sensitivity", True, 0.770561002178649),
    ("wfns", (0.5, 0), "sensitivity", True, 0.933434959349593),
    ("ndka", (0.9, 0.8), "sensitivity", True, 0.554439662043679),
    ("ndka", (0.5, 0), "sensitivity", True, 0.714092140921409),
    ("wfns", (1, 0), "specificity", True, 0.823678861788618),
    ("ndka", (1, 0), "sensitivity", True, 0.611957994579946),
]


def test_ties_count_half_and_thresholds_are_midpoints():
    # cases {1, 2, 2}, controls {0, 2}: pairs > : (1,0),(2,0),(2,0) = 3, ties (2,2) x2 = 1 -> 4/6.
    roc = roc_from_groups([1, 2, 2], [0, 2])
    assert roc.auc == pytest.approx(4 / 6, abs=1e-15)
    np.testing.assert_array_equal(roc.thresholds, [-np.inf, 0.5, 1.5, np.inf])
    np.testing.assert_array_equal(roc.tp, [3, 3, 2, 0])
    np.testing.assert_array_equal(roc.fp, [2, 1, 1, 0])


def test_direction_greater_negates_and_keeps_original_thresholds():
    up = roc_from_groups([3.0, 4.0], [1.0, 2.0])
    down = roc_from_groups([1.0, 2.0], [3.0, 4.0], direction=">")
    assert up.auc == down.auc == 1.0
    np.testing.assert_array_equal(down.thresholds, [np.inf, 3.5, 2.5, 1.5, -np.inf])
    assert down.counts_at(2.0) == (2, 0, 2, 0)  # positive when score <= 2.0


def test_auto_direction_warns_and_uses_pROC_median_rule():
    with pytest.warns(DirectionWarning, match="controls > cases"):
        roc = roc_from_groups([1.0, 2.0, 2.5], [3.0, 4.0], direction="auto")
    assert roc.direction == ">"
    assert roc.auc == 1.0


@pytest.mark.parametrize(
    ("truth", "scores", "match"),
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "needs positives and negatives"),
        ([1, 0, 2], [0.1, 0.2, 0.3], "binary"),
        ([1, 0], [0.1, np.nan], "non-finite"),
        ([1, 0, 1], [0.1, 0.2], "truth has 3 values but scores has 2"),
    ],
)
def test_bad_input_raises(truth, scores, match):
    with pytest.raises(InputError, match=match):
        roc_curve(truth, scores)


@pytest.mark.realdata
def test_s100b_coords_match_pROC(asah, asah_truth):
    roc = roc_curve(asah_truth, asah["s100b"].to_numpy())
    expected = np.array(S100B_COORDS, dtype=float)
    assert roc.thresholds.size == 51
    np.testing.assert_allclose(roc.thresholds, expected[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(roc.tn, expected[:, 1])
    np.testing.assert_array_equal(roc.tp, expected[:, 2])
    np.testing.assert_array_equal(roc.fn, expected[:, 3])
    np.testing.assert_array_equal(roc.fp, expected[:, 4])


@pytest.mark.realdata
def test_reversed_direction_counts_match_pROC(asah, asah_truth):
    # Source: xrobin/pROC tests/testthat/helper-coords-expected.R (expected.coords.reverse),
    # roc(aSAH$outcome, aSAH$s100b, direction=">"): threshold -> (tn, tp, fn, fp).
    roc = roc_curve(asah_truth, asah["s100b"].to_numpy(), direction=">")
    expected = {
        0.05: (64, 1, 40, 8),
        0.055: (64, 1, 40, 8),
        0.205: (14, 15, 26, 58),
        0.52: (0, 30, 11, 72),
    }
    for threshold, (tn, tp, fn, fp) in expected.items():
        assert roc.counts_at(threshold) == (tp, fp, tn, fn)


@pytest.mark.realdata
@pytest.mark.parametrize("marker", sorted(FULL_AUC))
def test_full_auc_matches_pROC(asah, asah_truth, marker):
    assert roc_curve(asah_truth, asah[marker].to_numpy()).auc == pytest.approx(
        FULL_AUC[marker], abs=1e-12
    )


@pytest.mark.realdata
@pytest.mark.parametrize(("marker", "bounds", "focus", "correct", "expected"), PARTIAL_AUC)
def test_partial_auc_matches_pROC(asah, asah_truth, marker, bounds, focus, correct, expected):
    roc = roc_curve(asah_truth, asah[marker].to_numpy())
    assert partial_auc(roc, bounds, focus=focus, correct=correct) == pytest.approx(
        expected, abs=1e-12
    )
    # The bounds' order does not matter (pROC: "direction is unspecified").
    assert partial_auc(roc, bounds[::-1], focus=focus, correct=correct) == pytest.approx(
        expected, abs=1e-12
    )


@pytest.mark.realdata
def test_corrected_partial_auc_below_diagonal_is_nan(asah, asah_truth):
    # pROC returns NA with a warning for ndka, partial.auc = c(1, .9), focus "se", correct = TRUE
    # (xrobin/pROC tests/testthat/test-auc.R).
    roc = roc_curve(asah_truth, asah["ndka"].to_numpy())
    assert np.isnan(partial_auc(roc, (1, 0.9), focus="sensitivity", correct=True))


def test_partial_auc_rejects_bad_bounds():
    roc = roc_from_groups([1, 2], [0, 1])
    with pytest.raises(InputError, match="within"):
        partial_auc(roc, (1.2, 0.8))
    with pytest.raises(InputError, match="two different bounds"):
        partial_auc(roc, (0.8, 0.8), correct=True)
