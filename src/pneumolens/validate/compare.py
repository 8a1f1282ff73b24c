"""Comparing AUCs: DeLong tests (paired, unpaired), bootstrap test, multiplicity adjustment.

* Paired DeLong test (DeLong et al. 1988): two scores on the same cases,
  ``Z = (A1 - A2) / sqrt(var1 + var2 - 2 cov)``; as pROC ``roc.test(paired=TRUE)``.
* Unpaired DeLong test, two groups of cases (e.g. men vs women). pROC uses a Welch-type
  statistic ``D = (A1 - A2) / sqrt(V1 + V2)`` referred to Student's t with
  ``df = (V1 + V2)^2 / (V1^2 / (N1 - 1) + V2^2 / (N2 - 1))`` (``N`` = cases + controls of a
  curve): method ``"delong_unpaired_t"``. MedCalc refers the same statistic to the normal
  distribution (Hanley & McNeil 1983's z for independent samples): method
  ``"delong_unpaired_z"``.
* Bootstrap test (pROC ``method="bootstrap"``): ``D = (A1 - A2) / sd(A1* - A2*)`` over
  stratified replicates, normal reference.
* Holm (1979) and Bonferroni adjustment of p-values over a family of comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from pneumolens.errors import InputError
from pneumolens.validate.bootstrap import bootstrap_aucs, percentile_ci
from pneumolens.validate.delong import roc_placements
from pneumolens.validate.roc import RocCurve

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class AucComparison:
    """Result of comparing two AUCs (``a`` minus ``b``).

    Attributes
    ----------
    method
        ``"delong_paired"``, ``"delong_unpaired_t"``, ``"delong_unpaired_z"``,
        ``"bootstrap_paired"`` or ``"bootstrap_unpaired"``.
    paired
        Whether both curves are on the same cases.
    statistic
        Z (or D, or t) statistic.
    df
        Degrees of freedom of the t reference; None for a normal reference.
    p_value
        For ``alternative``: ``"greater"`` tests AUC a > AUC b.
    difference, difference_ci
        ``auc_a - auc_b`` and its CI.
    """

    method: str
    paired: bool
    statistic: float
    df: float | None
    p_value: float
    alternative: str
    auc_a: float
    auc_b: float
    difference: float
    difference_ci: tuple[float, float]
    level: float


def _check(alternative: str, level: float) -> None:
    if alternative not in ALTERNATIVES:
        raise InputError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    if not 0.0 < level < 1.0:
        raise InputError(f"confidence level must be in (0, 1), got {level}")


def p_value(statistic: float, alternative: str, *, df: float | None = None) -> float:
    """p-value of a Z (``df=None``) or t statistic."""
    dist = norm if df is None else student_t(df)
    if alternative == "two-sided":
        return float(2.0 * dist.cdf(-abs(statistic)))
    if alternative == "greater":
        return float(dist.sf(statistic))
    return float(dist.cdf(statistic))


def _ratio(diff: float, sd: float) -> float:
    if sd == 0.0 or not np.isfinite(sd):
        # Identical curves give 0/0; pROC reports Z = 0 (p = 1) there.
        return 0.0 if diff == 0.0 else float("nan")
    return float(diff / sd)


def delong_paired(
    a: RocCurve, b: RocCurve, *, alternative: Alternative = "two-sided", level: float = 0.95
) -> AucComparison:
    """Paired DeLong test of two curves built on the same cases (pROC ``roc.test``)."""
    _check(alternative, level)
    p = roc_placements(a, b)
    cov = p.covariance
    var = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]
    diff = float(p.auc[0] - p.auc[1])
    sd = float(np.sqrt(max(var, 0.0)))
    z = _ratio(diff, sd)
    half = float(norm.ppf(0.5 + level / 2.0)) * sd
    return AucComparison(
        method="delong_paired",
        paired=True,
        statistic=z,
        df=None,
        p_value=p_value(z, alternative),
        alternative=alternative,
        auc_a=float(p.auc[0]),
        auc_b=float(p.auc[1]),
        difference=diff,
        difference_ci=(diff - half, diff + half),
        level=level,
    )


def delong_unpaired(
    a: RocCurve,
    b: RocCurve,
    *,
    reference: Literal["t", "normal"] = "t",
    alternative: Alternative = "two-sided",
    level: float = 0.95,
) -> AucComparison:
    """DeLong test for two curves on different cases.

    ``reference="t"`` is pROC's Welch-type t test (``roc.test(paired=FALSE)``);
    ``reference="normal"`` is the z test MedCalc reports for independent ROC curves.
    """
    _check(alternative, level)
    if reference not in ("t", "normal"):
        raise InputError(f"reference must be 't' or 'normal', got {reference!r}")
    va = float(roc_placements(a).covariance[0, 0])
    vb = float(roc_placements(b).covariance[0, 0])
    diff = a.auc - b.auc
    sd = float(np.sqrt(va + vb))
    stat = _ratio(diff, sd)
    if reference == "t":
        na, nb = a.n_cases + a.n_controls, b.n_cases + b.n_controls
        df = float((va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)))
        q = float(student_t.ppf(0.5 + level / 2.0, df)) if np.isfinite(df) else float("nan")
        method = "delong_unpaired_t"
    else:
        df = None
        q = float(norm.ppf(0.5 + level / 2.0))
        method = "delong_unpaired_z"
    return AucComparison(
        method=method,
        paired=False,
        statistic=stat,
        df=df,
        p_value=p_value(stat, alternative, df=df),
        alternative=alternative,
        auc_a=a.auc,
        auc_b=b.auc,
        difference=diff,
        difference_ci=(diff - q * sd, diff + q * sd),
        level=level,
    )


def bootstrap_test(
    a: RocCurve,
    b: RocCurve,
    *,
    paired: bool,
    n_boot: int = 2000,
    seed: int | None = None,
    alternative: Alternative = "two-sided",
    level: float = 0.95,
) -> AucComparison:
    """pROC's bootstrap test: ``D = diff / sd(bootstrap diffs)``, normal reference.

    The CI of the difference is the percentile interval of the bootstrap differences.
    """
    _check(alternative, level)
    reps = bootstrap_aucs(a, b, n_boot=n_boot, seed=seed, paired=paired)
    diffs = reps[0] - reps[1]
    diff = a.auc - b.auc
    stat = _ratio(diff, float(np.std(diffs, ddof=1)))
    return AucComparison(
        method="bootstrap_paired" if paired else "bootstrap_unpaired",
        paired=paired,
        statistic=stat,
        df=None,
        p_value=p_value(stat, alternative),
        alternative=alternative,
        auc_a=a.auc,
        auc_b=b.auc,
        difference=diff,
        difference_ci=percentile_ci(diffs, level=level),
        level=level,
    )


def adjust_pvalues(
    p_values: list[float] | np.ndarray, *, method: Literal["holm", "bonferroni", "none"] = "holm"
) -> np.ndarray:
    """Family-wise adjustment of p-values (as R's ``p.adjust``); NaNs stay NaN and do not count."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    k = int(ok.sum())
    if method == "none" or k == 0:
        out[ok] = p[ok]
        return out
    q = p[ok]
    if method == "bonferroni":
        out[ok] = np.minimum(q * k, 1.0)
    elif method == "holm":
        order = np.argsort(q, kind="stable")
        stepped = np.maximum.accumulate((k - np.arange(k)) * q[order])
        adj = np.empty(k)
        adj[order] = np.minimum(stepped, 1.0)
        out[ok] = adj
    else:
        raise InputError(f"adjustment must be 'holm', 'bonferroni' or 'none', got {method!r}")
    return out
