"""Operating points: Youden-optimal and fixed thresholds."""

from __future__ import annotations

import pytest

from pneumolens.errors import InputError
from pneumolens.validate.operating import operating_point, youden_threshold
from pneumolens.validate.roc import roc_curve, roc_from_groups


@pytest.mark.realdata
def test_youden_s100b_matches_pROC(asah, asah_truth):
    # ../shared/data/README.md (printed): threshold 0.205, sensitivity 0.6341, specificity 0.8056;
    # xrobin/pROC tests/testthat/test-coords.R: coords(r.s100b, "best") is row 18 (0.205),
    # youden (se + sp) 1.43970189701897 in helper-coords-expected.R.
    roc = roc_curve(asah_truth, asah["s100b"].to_numpy())
    op = operating_point(roc)
    assert op.rule == "youden" and op.n_tied == 1
    assert op.threshold == pytest.approx(0.205, abs=1e-12)
    assert round(op.metrics.sensitivity.value, 4) == 0.6341
    assert round(op.metrics.specificity.value, 4) == 0.8056
    assert op.youden_index + 1 == pytest.approx(1.43970189701897, abs=1e-12)
    assert (op.metrics.tp, op.metrics.fp, op.metrics.tn, op.metrics.fn) == (26, 14, 58, 15)


def test_fixed_threshold_counts_score_equal_to_threshold_as_positive():
    roc = roc_from_groups([0.5, 0.7, 0.9], [0.1, 0.5])
    op = operating_point(roc, rule=0.5)
    assert op.rule == "fixed"
    assert (op.metrics.tp, op.metrics.fp) == (3, 1)


def test_youden_ties_pick_the_highest_sensitivity():
    # Cut 0.45 gives se 2/2 sp 1/2; cut 0.75 gives se 1/2 sp 2/2: both sum to 1.5.
    roc = roc_from_groups([0.6, 0.9], [0.3, 0.7])
    threshold, tied = youden_threshold(roc)
    assert tied == 2
    assert threshold == pytest.approx(0.45)


def test_bad_rule():
    roc = roc_from_groups([1.0], [0.0])
    with pytest.raises(InputError, match="youden"):
        operating_point(roc, rule="best")
    with pytest.raises(InputError, match="finite"):
        operating_point(roc, rule=float("inf"))
