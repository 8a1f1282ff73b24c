"""Exact binomial CIs and 2x2 accuracy measures."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binom

from pneumolens.errors import InputError
from pneumolens.validate.proportions import clopper_pearson, diagnostic_metrics


@pytest.mark.parametrize(
    ("x", "n", "level", "expected"),
    [
        # R binom.test(9, 24)$conf.int and binom.test(1, 1497, conf.level = 0.9)$conf.int, as
        # printed (7 significant digits) in R's output quoted at
        # https://huggingface.co/datasets/nvidia/Nemotron-CC-Math-v1 ("r binom test confidence interval").
        (9, 24, 0.95, (0.1879929, 0.5940636)),
        (1, 1497, 0.90, (3.426347e-05, 3.164954e-03)),
    ],
)
def test_clopper_pearson_matches_R_binom_test(x, n, level, expected):
    lo, hi = clopper_pearson(x, n, level=level)
    assert float(f"{lo:.7g}") == expected[0]
    assert float(f"{hi:.7g}") == expected[1]


@pytest.mark.parametrize(("x", "n"), [(3, 10), (26, 41), (58, 72), (1, 2)])
def test_clopper_pearson_inverts_the_binomial_tests(x, n):
    # Definition: at the lower bound P(X >= x) = a/2, at the upper bound P(X <= x) = a/2.
    lo, hi = clopper_pearson(x, n)
    assert binom.sf(x - 1, n, lo) == pytest.approx(0.025, abs=1e-9)
    assert binom.cdf(x, n, hi) == pytest.approx(0.025, abs=1e-9)


def test_clopper_pearson_edges():
    assert clopper_pearson(0, 10)[0] == 0.0
    assert clopper_pearson(10, 10)[1] == 1.0
    assert clopper_pearson(0, 10)[1] == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-12)
    assert all(math.isnan(v) for v in clopper_pearson(0, 0))
    with pytest.raises(InputError, match="successes <= trials"):
        clopper_pearson(5, 3)


def test_diagnostic_metrics_at_pROC_s100b_cutoff():
    # xrobin/pROC tests/testthat/test-coords.R, coords(r.s100b, 0.205): tp 26, fp 14, tn 58, fn 15,
    # specificity 58/72, sensitivity 26/41, accuracy 84/113, npv 58/73, ppv 26/40.
    m = diagnostic_metrics(26, 14, 58, 15)
    assert m.sensitivity.value == 26 / 41
    assert m.specificity.value == 58 / 72
    assert m.accuracy.value == 84 / 113
    assert m.npv.value == 58 / 73
    assert m.ppv.value == 26 / 40
    assert m.lr_pos == pytest.approx((26 / 41) / (14 / 72))
    assert m.lr_neg == pytest.approx((15 / 41) / (58 / 72))
    # Log-method CI: symmetric on the log scale around the ratio.
    lo, hi = m.lr_pos_ci
    assert math.log(m.lr_pos) - math.log(lo) == pytest.approx(math.log(hi) - math.log(m.lr_pos))
    assert m.sensitivity.ci == clopper_pearson(26, 41)


def test_likelihood_ratio_with_perfect_specificity_is_infinite():
    m = diagnostic_metrics(5, 0, 10, 5)
    assert m.lr_pos == math.inf
    assert all(math.isnan(v) for v in m.lr_pos_ci)
    assert m.ppv.value == 1.0


@pytest.mark.parametrize("counts", [(-1, 0, 1, 1), (1.5, 0, 1, 1)])
def test_diagnostic_metrics_rejects_bad_counts(counts):
    with pytest.raises(InputError, match="non-negative integers"):
        diagnostic_metrics(*counts)
