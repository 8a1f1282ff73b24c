"""Diagnostic accuracy from a 2x2 table, with exact (Clopper-Pearson) confidence intervals.

Clopper & Pearson (1934), doi:10.1093/biomet/26.4.404: the interval inverts two one-sided
binomial tests, ``[B(a/2; x, n-x+1), B(1-a/2; x+1, n-x)]`` with ``B`` the beta quantile; it is the
"exact" interval MedCalc and most radiology papers report for sensitivity and specificity.
Likelihood ratios get the log-method interval of Simel, Samsa & Matchar (1991),
doi:10.1016/0895-4356(91)90128-V (as MedCalc does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import beta, norm

from pneumolens.errors import InputError

NAN = float("nan")
Interval = tuple[float, float]


def clopper_pearson(successes: int, trials: int, *, level: float = 0.95) -> Interval:
    """Exact binomial confidence interval of ``successes / trials``.

    Returns ``(nan, nan)`` when ``trials == 0`` (the proportion is undefined).
    """
    x, n = int(successes), int(trials)
    if n < 0 or x < 0 or x > n:
        raise InputError(f"need 0 <= successes <= trials, got {x} of {n}")
    if not 0.0 < level < 1.0:
        raise InputError(f"confidence level must be in (0, 1), got {level}")
    if n == 0:
        return (NAN, NAN)
    alpha = 1.0 - level
    lo = 0.0 if x == 0 else float(beta.ppf(alpha / 2.0, x, n - x + 1))
    hi = 1.0 if x == n else float(beta.ppf(1.0 - alpha / 2.0, x + 1, n - x))
    return (lo, hi)


@dataclass(frozen=True)
class Proportion:
    """A proportion ``successes / trials`` with its exact CI."""

    successes: int
    trials: int
    value: float
    ci: Interval


def proportion(successes: int, trials: int, *, level: float = 0.95) -> Proportion:
    value = successes / trials if trials else NAN
    return Proportion(
        int(successes), int(trials), value, clopper_pearson(successes, trials, level=level)
    )


@dataclass(frozen=True)
class DiagnosticMetrics:
    """Accuracy measures of a binary test against the truth.

    ``sensitivity = tp/(tp+fn)``, ``specificity = tn/(tn+fp)``, ``ppv = tp/(tp+fp)``,
    ``npv = tn/(tn+fn)``, ``accuracy = (tp+tn)/N``, each with an exact CI;
    ``lr_pos = se/(1-sp)``, ``lr_neg = (1-se)/sp`` with log-method CIs (NaN where undefined).
    """

    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion
    accuracy: Proportion
    lr_pos: float
    lr_pos_ci: Interval
    lr_neg: float
    lr_neg_ci: Interval


def _likelihood_ratio(a: int, n1: int, b: int, n2: int, *, level: float) -> tuple[float, Interval]:
    """Ratio ``(a/n1) / (b/n2)`` with the log-method CI (NaN where a count is 0)."""
    if n1 == 0 or n2 == 0:
        return NAN, (NAN, NAN)
    if b == 0:
        return (math.inf if a > 0 else NAN), (NAN, NAN)
    ratio = (a / n1) / (b / n2)
    if a == 0:
        return ratio, (NAN, NAN)
    se_log = math.sqrt(1.0 / a - 1.0 / n1 + 1.0 / b - 1.0 / n2)
    z = float(norm.ppf(0.5 + level / 2.0))
    return ratio, (ratio * math.exp(-z * se_log), ratio * math.exp(z * se_log))


def diagnostic_metrics(
    tp: int, fp: int, tn: int, fn: int, *, level: float = 0.95
) -> DiagnosticMetrics:
    """Sensitivity, specificity, PPV, NPV, accuracy and likelihood ratios with CIs.

    Parameters
    ----------
    tp, fp, tn, fn
        Cell counts of the 2x2 table (non-negative integers).
    level
        Confidence level of every interval.
    """
    counts = {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    bad = {k: v for k, v in counts.items() if int(v) != v or v < 0}
    if bad:
        raise InputError(f"2x2 counts must be non-negative integers, got {bad}")
    tp, fp, tn, fn = int(tp), int(fp), int(tn), int(fn)
    lr_pos, lr_pos_ci = _likelihood_ratio(tp, tp + fn, fp, fp + tn, level=level)
    lr_neg, lr_neg_ci = _likelihood_ratio(fn, tp + fn, tn, fp + tn, level=level)
    return DiagnosticMetrics(
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        sensitivity=proportion(tp, tp + fn, level=level),
        specificity=proportion(tn, tn + fp, level=level),
        ppv=proportion(tp, tp + fp, level=level),
        npv=proportion(tn, tn + fn, level=level),
        accuracy=proportion(tp + tn, tp + fp + tn + fn, level=level),
        lr_pos=lr_pos,
        lr_pos_ci=lr_pos_ci,
        lr_neg=lr_neg,
        lr_neg_ci=lr_neg_ci,
    )
