"""AUC comparisons against pROC's roc.test expectations on aSAH, and p-value adjustment.

pROC values are typed from xrobin/pROC tests/testthat/test-roc.test.R (statistics, p-values and
CIs of roc.test with its defaults) and ../shared/data/README.md (printed output).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pneumolens.errors import InputError
from pneumolens.validate.compare import (
    adjust_pvalues,
    bootstrap_test,
    delong_paired,
    delong_unpaired,
    p_value,
)
from pneumolens.validate.roc import roc_curve, roc_from_groups

# roc.test(r.a, r.b): Z, p, conf.int. Source: xrobin/pROC tests/testthat/test-roc.test.R.
PAIRED = [
    (
        "wfns",
        "s100b",
        2.20898359144091,
        0.0271757822291882,
        (0.0104061769564846, 0.174214419249478),
    ),
    (
        "wfns",
        "ndka",
        2.79777591868904,
        0.00514557970691098,
        (0.0634011709339876, 0.3600405634833566),
    ),
    (
        "ndka",
        "s100b",
        -1.39077002573558,
        0.164295175223054,
        (-0.2876917446341914, 0.0488706064228094),
    ),
]
# roc.test(r.a, r.b, paired = FALSE): D, p. Same source.
UNPAIRED = [
    ("wfns", "s100b", 1.43490640926908, 0.152825378808796),
    ("wfns", "ndka", 3.10125096778969, 0.00220950791756457),
    ("ndka", "s100b", -1.55995743389685, 0.120192832430845),
]


@pytest.fixture(scope="module")
def rocs(asah, asah_truth):
    return {m: roc_curve(asah_truth, asah[m].to_numpy()) for m in ("wfns", "ndka", "s100b")}


@pytest.mark.realdata
@pytest.mark.parametrize(("a", "b", "z", "p", "ci"), PAIRED)
def test_paired_delong_matches_pROC(rocs, a, b, z, p, ci):
    res = delong_paired(rocs[a], rocs[b])
    assert res.method == "delong_paired" and res.paired and res.df is None
    assert res.statistic == pytest.approx(z, abs=1e-9)
    assert res.p_value == pytest.approx(p, abs=1e-12)
    np.testing.assert_allclose(res.difference_ci, ci, atol=1e-12)
    # Reversing the curves flips the statistic, keeps the p-value (same source).
    back = delong_paired(rocs[b], rocs[a])
    assert back.statistic == pytest.approx(-z, abs=1e-9)
    assert back.p_value == pytest.approx(p, abs=1e-12)


@pytest.mark.realdata
def test_paired_delong_printed_values(rocs):
    # ../shared/data/README.md: "paired DeLong test wfns vs s100b Z = 2.209, p = 0.02718".
    res = delong_paired(rocs["wfns"], rocs["s100b"])
    assert round(res.statistic, 3) == 2.209
    assert float(f"{res.p_value:.4g}") == 0.02718


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("alternative", "expected"), [("greater", 0.0135878911145941), ("less", 0.986412108885406)]
)
def test_one_sided_paired_matches_pROC(rocs, asah, asah_truth, alternative, expected):
    assert delong_paired(
        rocs["wfns"], rocs["s100b"], alternative=alternative
    ).p_value == pytest.approx(expected, abs=1e-12)
    # Same with both markers negated and direction ">" (same source: "direction='>'" test).
    mw = roc_curve(asah_truth, -asah["wfns"].to_numpy(), direction=">")
    ms = roc_curve(asah_truth, -asah["s100b"].to_numpy(), direction=">")
    assert delong_paired(mw, ms, alternative=alternative).p_value == pytest.approx(
        expected, abs=1e-12
    )


@pytest.mark.realdata
@pytest.mark.parametrize(("a", "b", "d", "p"), UNPAIRED)
def test_unpaired_delong_t_matches_pROC(rocs, a, b, d, p):
    res = delong_unpaired(rocs[a], rocs[b])
    assert res.method == "delong_unpaired_t" and not res.paired
    assert res.statistic == pytest.approx(d, abs=1e-9)
    assert res.p_value == pytest.approx(p, abs=1e-12)
    # pROC's p is 2 * pt(-|D|, df): check the df it implies is the one reported.
    assert p_value(res.statistic, "two-sided", df=res.df) == pytest.approx(p, abs=1e-12)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("alternative", "expected"), [("greater", 0.076412689404398), ("less", 0.923587310595602)]
)
def test_one_sided_unpaired_matches_pROC(rocs, alternative, expected):
    res = delong_unpaired(rocs["wfns"], rocs["s100b"], alternative=alternative)
    assert res.p_value == pytest.approx(expected, abs=1e-12)


@pytest.mark.realdata
def test_unpaired_normal_variant_uses_same_statistic_and_normal_p(rocs):
    t_res = delong_unpaired(rocs["wfns"], rocs["s100b"])
    z_res = delong_unpaired(rocs["wfns"], rocs["s100b"], reference="normal")
    assert z_res.method == "delong_unpaired_z" and z_res.df is None
    assert z_res.statistic == t_res.statistic
    # Two-sided normal p-value, computed independently of scipy.
    assert z_res.p_value == pytest.approx(
        math.erfc(abs(z_res.statistic) / math.sqrt(2.0)), abs=1e-14
    )
    assert z_res.p_value < t_res.p_value  # t tails are heavier


def test_identical_curves_give_z_zero_and_p_one():
    roc = roc_from_groups([0.3, 0.6, 0.9], [0.1, 0.4])
    res = delong_paired(roc, roc)
    assert res.statistic == 0.0 and res.p_value == 1.0


def test_paired_needs_same_cases():
    with pytest.raises(InputError, match="same cases"):
        delong_paired(roc_from_groups([1, 2], [0, 1]), roc_from_groups([1, 2, 3], [0, 1]))


@pytest.mark.realdata
def test_bootstrap_test_is_seeded_and_close_to_delong(rocs):
    a = bootstrap_test(rocs["wfns"], rocs["s100b"], paired=True, n_boot=1000, seed=3)
    b = bootstrap_test(rocs["wfns"], rocs["s100b"], paired=True, n_boot=1000, seed=3)
    assert a == b
    assert a.method == "bootstrap_paired"
    # Bootstrap SD of the difference estimates DeLong's: same order of p (0.027 by DeLong).
    assert 0.005 < a.p_value < 0.08
    lo, hi = a.difference_ci
    assert lo < a.difference < hi


@pytest.mark.parametrize(
    ("p", "method", "expected"),
    [
        # R: p.adjust(c(0.01, 0.04, 0.03), "holm") = 0.03 0.06 0.06 (hand-checked: 3p1, max(2p3, .), p2).
        ([0.01, 0.04, 0.03], "holm", [0.03, 0.06, 0.06]),
        ([0.01, 0.04, 0.03], "bonferroni", [0.03, 0.12, 0.09]),
        ([0.5, 0.6], "holm", [1.0, 1.0]),
        ([0.01, np.nan, 0.02], "holm", [0.02, np.nan, 0.02]),
        ([0.01, 0.2], "none", [0.01, 0.2]),
    ],
)
def test_adjust_pvalues(p, method, expected):
    np.testing.assert_allclose(adjust_pvalues(p, method=method), expected, equal_nan=True)
