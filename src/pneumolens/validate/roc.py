"""Empirical ROC curves with pROC's conventions.

Conventions (those of pROC, Robin et al. 2011, doi:10.1186/1471-2105-12-77, so that numbers can
be checked against it):

* thresholds lie at the midpoints between consecutive distinct observed values, plus ``-inf`` and
  ``+inf`` at the ends;
* with direction ``"<"`` (controls < cases, the default: a higher score means more likely
  positive) a case is called positive when ``score >= threshold``; with ``">"`` when
  ``score <= threshold``;
* ties between a case and a control count 1/2 in the AUC (the Mann-Whitney statistic);
* ``direction="auto"`` chooses ``"<"`` when the median of the controls is at most the median of
  the cases, else ``">"`` (pROC's rule), and warns, because choosing the direction from the data
  biases the AUC upwards.

Internally a ``">"`` curve works on the negated score, so every statistic has one code path; the
thresholds reported to the user are on the original scale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pneumolens.errors import InputError

Direction = Literal["<", ">", "auto"]


class DirectionWarning(UserWarning):
    """The direction of a ROC curve was chosen from the data (``direction="auto"``)."""


@dataclass(frozen=True)
class RocCurve:
    """An empirical ROC curve.

    Attributes
    ----------
    cases, controls
        Scores of the positive and negative cases, on the *canonical* scale (negated when
        ``direction == ">"``), in input order, so that curves built from the same table are
        paired case by case. Shapes ``(m,)`` and ``(n,)``.
    direction
        ``"<"`` (higher score = positive) or ``">"`` (lower score = positive).
    thresholds
        Thresholds on the original score scale, in the order of increasing canonical threshold
        (so sensitivity decreases along the array), shape ``(k + 1,)`` for ``k`` distinct values.
    tp, fp
        True and false positives at each threshold.
    """

    cases: np.ndarray
    controls: np.ndarray
    direction: Literal["<", ">"]
    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray

    @property
    def n_cases(self) -> int:
        return int(self.cases.size)

    @property
    def n_controls(self) -> int:
        return int(self.controls.size)

    @property
    def sensitivity(self) -> np.ndarray:
        return self.tp / self.n_cases

    @property
    def specificity(self) -> np.ndarray:
        return 1.0 - self.fp / self.n_controls

    @property
    def tn(self) -> np.ndarray:
        return self.n_controls - self.fp

    @property
    def fn(self) -> np.ndarray:
        return self.n_cases - self.tp

    @property
    def auc(self) -> float:
        """Area under the curve (Mann-Whitney, ties count 1/2)."""
        return mann_whitney_auc(self.cases, self.controls)

    def to_canonical(self, threshold: float) -> float:
        """A threshold on the original scale mapped to the canonical (``"<"``) scale."""
        return float(threshold) if self.direction == "<" else -float(threshold)

    def counts_at(self, threshold: float) -> tuple[int, int, int, int]:
        """``(tp, fp, tn, fn)`` when calling positive at ``threshold`` (original scale)."""
        t = self.to_canonical(threshold)
        tp = int(np.count_nonzero(self.cases >= t))
        fp = int(np.count_nonzero(self.controls >= t))
        return tp, fp, self.n_controls - fp, self.n_cases - tp


def _as_1d_float(values: np.ndarray | list, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(arr)):
        raise InputError(
            f"{name} contains {int(np.sum(~np.isfinite(arr)))} missing or non-finite value(s)",
            todo="drop those cases first (the study command does this and counts them)",
        )
    return arr


def choose_direction(cases: np.ndarray, controls: np.ndarray) -> Literal["<", ">"]:
    """pROC's automatic direction: ``"<"`` when median(controls) <= median(cases)."""
    return "<" if np.median(controls) <= np.median(cases) else ">"


def roc_curve(
    truth: np.ndarray | list,
    scores: np.ndarray | list,
    *,
    direction: Direction = "<",
) -> RocCurve:
    """Build an empirical ROC curve from binary truth and scores.

    Parameters
    ----------
    truth
        Shape ``(N,)``; true/1 for a positive case, false/0 for a negative one.
    scores
        Shape ``(N,)``; finite numbers.
    direction
        ``"<"``: higher score means positive (default). ``">"``: lower score means positive.
        ``"auto"``: pROC's median rule, with a :class:`DirectionWarning`.

    Returns
    -------
    RocCurve

    Raises
    ------
    InputError
        Shapes differ, a score is not finite, or one class is absent.
    """
    y = np.asarray(truth).ravel()
    s = _as_1d_float(scores, "scores")
    if y.shape != s.shape:
        raise InputError(f"truth has {y.size} values but scores has {s.size}")
    if y.dtype != bool:
        uniq = set(np.unique(y).tolist())
        if not uniq <= {0, 1}:
            raise InputError(
                f"truth must be binary 0/1 or boolean, got values {sorted(uniq)[:5]}",
                todo="map the positive class to 1 (the study command does this with --positive)",
            )
        y = y.astype(bool)
    return roc_from_groups(s[y], s[~y], direction=direction)


def roc_from_groups(
    cases: np.ndarray | list,
    controls: np.ndarray | list,
    *,
    direction: Direction = "<",
) -> RocCurve:
    """Build a ROC curve from the scores of positive ``cases`` and negative ``controls``.

    See :func:`roc_curve` for the conventions and ``direction``.
    """
    x = _as_1d_float(cases, "case scores")
    y = _as_1d_float(controls, "control scores")
    if x.size == 0 or y.size == 0:
        raise InputError(
            f"a ROC curve needs positives and negatives; got {x.size} positive(s) and "
            f"{y.size} negative(s)",
            todo="check the truth column and the positive value",
        )
    if direction == "auto":
        direction = choose_direction(x, y)
        warnings.warn(
            f"ROC direction chosen from the data: {direction!r} "
            f"({'controls < cases' if direction == '<' else 'controls > cases'}); "
            "this biases the AUC upwards, set the direction explicitly",
            DirectionWarning,
            stacklevel=2,
        )
    if direction not in ("<", ">"):
        raise InputError(f"direction must be '<', '>' or 'auto', got {direction!r}")
    if direction == ">":
        x, y = -x, -y
    values = np.unique(np.concatenate([x, y]))
    canonical = np.concatenate([[-np.inf], (values[1:] + values[:-1]) / 2.0, [np.inf]])
    tp = x.size - np.searchsorted(np.sort(x), canonical, side="left")
    fp = y.size - np.searchsorted(np.sort(y), canonical, side="left")
    thresholds = canonical if direction == "<" else -canonical
    return RocCurve(cases=x, controls=y, direction=direction, thresholds=thresholds, tp=tp, fp=fp)


def mann_whitney_auc(cases: np.ndarray, controls: np.ndarray) -> float:
    """P(case > control) + 1/2 P(case == control), from midranks.

    Parameters
    ----------
    cases, controls
        Scores on the canonical scale (higher = positive), shapes ``(m,)`` and ``(n,)``.
    """
    from scipy.stats import rankdata

    m, n = len(cases), len(controls)
    ranks = rankdata(np.concatenate([cases, controls]))
    return float((ranks[:m].sum() - m * (m + 1) / 2.0) / (m * n))


def _area_under_polyline(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact area under the piecewise-linear curve through ``(x, y)`` on ``[lo, hi]``.

    ``x`` must be non-decreasing; vertical steps (repeated ``x``) add no area.
    """
    x0, x1, y0, y1 = x[:-1], x[1:], y[:-1], y[1:]
    width = x1 - x0
    keep = (width > 0) & (x1 > lo) & (x0 < hi)
    x0, x1, y0, y1, width = x0[keep], x1[keep], y0[keep], y1[keep], width[keep]
    a = np.maximum(x0, lo)
    b = np.minimum(x1, hi)
    ya = y0 + (y1 - y0) * (a - x0) / width
    yb = y0 + (y1 - y0) * (b - x0) / width
    return float(np.sum((b - a) * (ya + yb) / 2.0))


def partial_auc(
    roc: RocCurve,
    bounds: tuple[float, float],
    *,
    focus: Literal["specificity", "sensitivity"] = "specificity",
    correct: bool = False,
) -> float:
    """Partial area under the ROC curve, as pROC's ``auc(partial.auc=, partial.auc.focus=,
    partial.auc.correct=)``.

    Parameters
    ----------
    roc
        The curve.
    bounds
        Interval of specificity (or sensitivity, with ``focus="sensitivity"``) in ``[0, 1]``,
        in either order.
    focus
        Which axis ``bounds`` restricts.
    correct
        Apply McClish's correction (McClish 1989, doi:10.1177/0272989X8900900307), which maps the
        partial area to ``[0.5, 1]``: 0.5 for a non-discriminant curve, 1 for a perfect one.

    Returns
    -------
    float
        The (corrected) partial AUC; NaN when ``correct`` and the partial area is below that of
        the diagonal (pROC returns NA with a warning; the correction is undefined there).
    """
    lo, hi = sorted(float(b) for b in bounds)
    if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
        raise InputError(f"partial AUC bounds must lie within [0, 1], got {bounds}")
    se, sp = roc.sensitivity, roc.specificity
    # Along increasing thresholds specificity never decreases and sensitivity never increases;
    # keeping that order connects vertical steps to the right neighbours.
    if focus == "specificity":
        along, height = sp, se
    elif focus == "sensitivity":
        along, height = se[::-1], sp[::-1]
    else:
        raise InputError(f"focus must be 'specificity' or 'sensitivity', got {focus!r}")
    area = _area_under_polyline(along, height, lo, hi)
    if not correct:
        return area
    if hi == lo:
        raise InputError("McClish correction needs two different bounds", todo="widen the interval")
    # Area of the diagonal and of the perfect curve over the interval (pROC's min/max).
    smallest = ((1.0 - lo) + (1.0 - hi)) * (hi - lo) / 2.0
    largest = hi - lo
    if area < smallest:
        return float("nan")
    return (1.0 + (area - smallest) / (largest - smallest)) / 2.0
