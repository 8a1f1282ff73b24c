"""DeLong variance and covariance of AUCs, by the fast algorithm of Sun & Xu.

DeLong, DeLong & Clarke-Pearson (1988), doi:10.2307/2531595, estimate the variance of the
empirical AUC from "placements" (structural components). Sun & Xu (2014),
doi:10.1109/LSP.2014.2337313, compute the placements from midranks in O(N log N) instead of the
O(m n) pairwise comparison. The variance uses the ``m - 1`` and ``n - 1`` denominators, as pROC
does, so the numbers match pROC's ``var()``, ``cov()`` and ``ci.auc(method="delong")``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

from pneumolens.errors import InputError
from pneumolens.validate.roc import RocCurve


@dataclass(frozen=True)
class Placements:
    """DeLong placements of one or several paired ROC curves.

    Attributes
    ----------
    auc
        Shape ``(k,)``: the AUC of each curve.
    cases
        Shape ``(k, m)``: for each case, the fraction of controls it outranks (ties 1/2).
    controls
        Shape ``(k, n)``: for each control, the fraction of cases that outrank it (ties 1/2).
    """

    auc: np.ndarray
    cases: np.ndarray
    controls: np.ndarray

    @property
    def covariance(self) -> np.ndarray:
        """DeLong covariance matrix of the AUCs, shape ``(k, k)``."""
        m, n = self.cases.shape[1], self.controls.shape[1]
        if m < 2 or n < 2:
            return np.full((self.auc.size, self.auc.size), np.nan)
        s10 = np.atleast_2d(np.cov(self.cases, ddof=1))
        s01 = np.atleast_2d(np.cov(self.controls, ddof=1))
        return s10 / m + s01 / n


def placements(case_scores: np.ndarray, control_scores: np.ndarray) -> Placements:
    """Midrank placements (Sun & Xu 2014) for ``k`` scores of the same cases.

    Parameters
    ----------
    case_scores
        Shape ``(k, m)`` or ``(m,)``: canonical scores (higher = positive) of the positives.
    control_scores
        Shape ``(k, n)`` or ``(n,)``: canonical scores of the negatives.
    """
    x = np.atleast_2d(np.asarray(case_scores, dtype=float))
    y = np.atleast_2d(np.asarray(control_scores, dtype=float))
    m, n = x.shape[1], y.shape[1]
    tz = rankdata(np.concatenate([x, y], axis=1), axis=1)
    tx = rankdata(x, axis=1)
    ty = rankdata(y, axis=1)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return Placements(auc=v10.mean(axis=1), cases=v10, controls=v01)


def roc_placements(*rocs: RocCurve) -> Placements:
    """Placements of one ROC curve, or of several built on the *same* cases in the same order."""
    if not rocs:
        raise InputError("no ROC curve given")
    shapes = {(r.n_cases, r.n_controls) for r in rocs}
    if len(shapes) != 1:
        raise InputError(
            f"paired curves must have the same cases and controls, got sizes {sorted(shapes)}",
            todo="use the unpaired comparison, or restrict both scores to the same cases",
        )
    return placements(np.stack([r.cases for r in rocs]), np.stack([r.controls for r in rocs]))


def delong_variance(roc: RocCurve) -> float:
    """DeLong variance of one curve's AUC (pROC ``var(roc)``); NaN with fewer than 2 of a class."""
    return float(roc_placements(roc).covariance[0, 0])


def delong_ci(roc: RocCurve, *, level: float = 0.95) -> tuple[float, float]:
    """Normal-approximation CI of the AUC with DeLong's variance, clipped to ``[0, 1]``.

    Same as pROC ``ci.auc(method="delong")``.
    """
    return normal_ci(roc.auc, delong_variance(roc), level=level, clip=(0.0, 1.0))


def normal_ci(
    estimate: float,
    variance: float,
    *,
    level: float = 0.95,
    clip: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """``estimate -/+ z * sqrt(variance)``, optionally clipped."""
    if not 0.0 < level < 1.0:
        raise InputError(f"confidence level must be in (0, 1), got {level}")
    if not np.isfinite(variance):
        return (float("nan"), float("nan"))
    half = norm.ppf(0.5 + level / 2.0) * np.sqrt(variance)
    lo, hi = estimate - half, estimate + half
    if clip is not None:
        lo, hi = max(lo, clip[0]), min(hi, clip[1])
    return (float(lo), float(hi))
