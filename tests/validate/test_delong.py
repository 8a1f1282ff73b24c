"""DeLong variance, covariance and CI: against pROC's test expectations and a brute-force
O(m n) implementation of DeLong et al. (1988).

pROC values are typed from xrobin/pROC: tests/testthat/test-var.R, test-cov.R, test-ci.auc.R,
and ../shared/data/README.md (pROC's printed output).
"""

from __future__ import annotations

import numpy as np
import pytest

from pneumolens.validate.delong import (
    delong_ci,
    delong_variance,
    normal_ci,
    placements,
    roc_placements,
)
from pneumolens.validate.roc import roc_curve, roc_from_groups

# Source: xrobin/pROC tests/testthat/test-var.R (var(r.<marker>)).
VARIANCE = {"wfns": 0.00146991470882363, "ndka": 0.0031908105493913, "s100b": 0.00266868245717244}
# Source: xrobin/pROC tests/testthat/test-cov.R (cov(r.a, r.b)).
COVARIANCE = [
    ("wfns", "ndka", -0.000532967856762438),
    ("ndka", "s100b", -0.000756164938056579),
    ("s100b", "wfns", 0.00119615567376754),
]


def brute_force_placements(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_midrank_placements_equal_pairwise_definition(seed):
    rng = np.random.default_rng(seed)
    # Rounded scores: many ties, which is where midranks matter.
    x = np.round(rng.normal(1.0, 1.0, size=37), 1)
    y = np.round(rng.normal(0.0, 1.0, size=52), 1)
    v10, v01 = brute_force_placements(x, y)
    p = placements(x, y)
    np.testing.assert_allclose(p.cases[0], v10, atol=1e-12)
    np.testing.assert_allclose(p.controls[0], v01, atol=1e-12)
    expected_var = np.var(v10, ddof=1) / x.size + np.var(v01, ddof=1) / y.size
    assert delong_variance(roc_from_groups(x, y)) == pytest.approx(expected_var, rel=1e-12)


def test_variance_is_nan_with_a_single_case():
    assert np.isnan(delong_variance(roc_from_groups([1.0], [0.0, 0.5])))
    assert all(np.isnan(delong_ci(roc_from_groups([1.0], [0.0, 0.5]))))


def test_normal_ci_clips_to_unit_interval():
    assert normal_ci(0.99, 0.01, clip=(0.0, 1.0))[1] == 1.0


@pytest.mark.realdata
@pytest.mark.parametrize("marker", sorted(VARIANCE))
def test_variance_matches_pROC(asah, asah_truth, marker):
    roc = roc_curve(asah_truth, asah[marker].to_numpy())
    assert delong_variance(roc) == pytest.approx(VARIANCE[marker], abs=1e-12)


@pytest.mark.realdata
@pytest.mark.parametrize(("a", "b", "expected"), COVARIANCE)
def test_covariance_matches_pROC(asah, asah_truth, a, b, expected):
    ra = roc_curve(asah_truth, asah[a].to_numpy())
    rb = roc_curve(asah_truth, asah[b].to_numpy())
    cov = roc_placements(ra, rb).covariance
    assert cov[0, 1] == pytest.approx(expected, abs=1e-12)
    assert cov[1, 0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("marker", "subset", "expected", "printed"),
    [
        # Source: xrobin/pROC tests/testthat/test-ci.auc.R (expected.ci.auc).
        ("ndka", None, (0.501244999271703, 0.722670989888189), None),
        # Source: same file, ci.auc(outcome ~ ndka, data = aSAH, subset = (gender == "Female")).
        ("ndka", "Female", (0.5261398281, 0.8081458862), None),
        # Source: ../shared/data/README.md, pROC's printed output (4 decimals).
        ("s100b", None, None, (0.6301, 0.8326)),
        ("ndka", None, None, (0.5012, 0.7227)),
    ],
)
def test_delong_ci_matches_pROC(asah, asah_truth, marker, subset, expected, printed):
    keep = np.ones(len(asah), bool) if subset is None else (asah["gender"] == subset).to_numpy()
    ci = delong_ci(roc_curve(asah_truth[keep], asah[marker].to_numpy()[keep]))
    if expected is not None:
        np.testing.assert_allclose(ci, expected, atol=1e-9)
    if printed is not None:
        assert tuple(round(c, 4) for c in ci) == printed
