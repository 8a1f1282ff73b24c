"""Operating points of a ROC curve: a fixed threshold or the Youden-optimal one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pneumolens.errors import InputError
from pneumolens.validate.proportions import DiagnosticMetrics, diagnostic_metrics
from pneumolens.validate.roc import RocCurve


@dataclass(frozen=True)
class OperatingPoint:
    """Where a ROC curve is cut, and the accuracy there.

    Attributes
    ----------
    rule
        ``"youden"`` or ``"fixed"``.
    threshold
        On the original score scale; positive when ``score >= threshold`` (direction ``"<"``)
        or ``score <= threshold`` (direction ``">"``).
    direction
        The curve's direction.
    metrics
        Counts and accuracy measures with exact CIs.
    n_tied
        With ``rule="youden"``: how many thresholds reach the same maximum (1 when unique).
    """

    rule: str
    threshold: float
    direction: str
    metrics: DiagnosticMetrics
    n_tied: int = 1

    @property
    def youden_index(self) -> float:
        """``sensitivity + specificity - 1``."""
        return self.metrics.sensitivity.value + self.metrics.specificity.value - 1.0


def youden_threshold(roc: RocCurve) -> tuple[float, int]:
    """Threshold maximising sensitivity + specificity (pROC ``coords(roc, "best")``).

    The sum is compared in exact integer arithmetic (``tp * n + tn * m``) so that ties are real
    ties. pROC returns every tied threshold; here one is chosen: the one with the highest
    sensitivity (the lowest threshold on the canonical scale), because a missed pneumonia costs
    more than a false alarm in triage. The number of tied thresholds is returned with it.

    Returns
    -------
    threshold, n_tied
    """
    m, n = roc.n_cases, roc.n_controls
    score = roc.tp.astype(np.int64) * n + (n - roc.fp.astype(np.int64)) * m
    best = np.flatnonzero(score == score.max())
    return float(roc.thresholds[best[0]]), int(best.size)


def operating_point(
    roc: RocCurve, *, rule: str | float = "youden", level: float = 0.95
) -> OperatingPoint:
    """Accuracy of ``roc`` at the Youden-optimal threshold or at a fixed one.

    Parameters
    ----------
    roc
        The curve.
    rule
        ``"youden"`` or a threshold on the original score scale.
    level
        Confidence level of the exact intervals. Note that at the Youden threshold the intervals
        are optimistic: the threshold was chosen on the same cases.
    """
    if isinstance(rule, str):
        if rule != "youden":
            raise InputError(f"operating point rule must be 'youden' or a number, got {rule!r}")
        threshold, tied = youden_threshold(roc)
        name = "youden"
    else:
        threshold, tied, name = float(rule), 1, "fixed"
        if not np.isfinite(threshold):
            raise InputError(f"a fixed threshold must be finite, got {rule!r}")
    tp, fp, tn, fn = roc.counts_at(threshold)
    return OperatingPoint(
        rule=name,
        threshold=threshold,
        direction=roc.direction,
        metrics=diagnostic_metrics(tp, fp, tn, fn, level=level),
        n_tied=tied,
    )
