"""Segmentation overlap and distance metrics, per case and summarised over cases.

Metrics of a predicted mask ``P`` against a truth mask ``T`` (boolean arrays, 2D or 3D):

* Dice ``2|P∩T| / (|P| + |T|)``, IoU ``|P∩T| / |P∪T|``,
  sensitivity ``|P∩T| / |T|``, precision ``|P∩T| / |P|``;
* HD95: the larger of the two directed 95th percentiles of the distances (in mm, with
  ``spacing``) from the surface voxels of one mask to the surface of the other; surfaces are the
  mask minus its erosion by the face-connected structuring element (as MONAI and MedPy).

Empty masks: the rule is explicit, not a silent 0.

=============  ==============  =============  =====  ===========  =========  ====
truth          prediction      Dice / IoU     sens.  precision    HD95       kind
=============  ==============  =============  =====  ===========  =========  ====
empty          empty           ``both_empty``  NaN   NaN          0 or NaN   "both"
empty          not empty       0              NaN    0            NaN        "truth"
not empty      empty           0              0      NaN          NaN        "prediction"
=============  ==============  =============  =====  ===========  =========  ====

``both_empty="one"`` (default) scores a correctly empty prediction as a perfect match (Dice 1,
IoU 1, HD95 0); ``both_empty="nan"`` leaves such cases out of the Dice/IoU/HD95 summaries
(MONAI's ``ignore_empty``). Summaries skip NaN and report how many cases each metric used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.stats import t as student_t

from pneumolens.errors import InputError

NAN = float("nan")
METRICS = ("dice", "iou", "sensitivity", "precision", "hd95")


@dataclass(frozen=True)
class SegmentationMetrics:
    """Metrics of one case. ``empty`` is ``""``, ``"both"``, ``"truth"`` or ``"prediction"``."""

    dice: float
    iou: float
    sensitivity: float
    precision: float
    hd95: float
    truth_voxels: int
    pred_voxels: int
    empty: str


def _check_pair(
    pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...] | None
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    p = np.asarray(pred)
    t = np.asarray(truth)
    if p.shape != t.shape:
        raise InputError(
            f"prediction shape {p.shape} differs from truth shape {t.shape}",
            todo="resample the prediction onto the truth grid",
        )
    if p.ndim not in (2, 3):
        raise InputError(f"masks must be 2D or 3D, got {p.ndim} dimensions")
    if spacing is None:
        spacing = (1.0,) * p.ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != p.ndim or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise InputError(f"spacing must be {p.ndim} positive numbers in mm, got {spacing}")
    return p.astype(bool), t.astype(bool), spacing


def _surface(mask: np.ndarray) -> np.ndarray:
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def hd95(pred: np.ndarray, truth: np.ndarray, *, spacing: tuple[float, ...] | None = None) -> float:
    """95th-percentile Hausdorff distance in mm (NaN if either mask is empty)."""
    p, t, spacing = _check_pair(pred, truth, spacing)
    if not p.any() or not t.any():
        return NAN
    sp, st = _surface(p), _surface(t)
    # Distance from every voxel to the nearest surface voxel of the other mask.
    to_t = ndimage.distance_transform_edt(~st, sampling=spacing)
    to_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return float(max(np.percentile(to_t[sp], 95), np.percentile(to_p[st], 95)))


def dice(pred: np.ndarray, truth: np.ndarray, *, both_empty: Literal["one", "nan"] = "one") -> float:
    """Dice ``2|P∩T| / (|P| + |T|)`` of two masks of one shape (non-zero is foreground).

    Both empty gives 1 (``both_empty="one"``) or NaN, as in :func:`segmentation_metrics`.
    """
    p, t = np.asarray(pred) != 0, np.asarray(truth) != 0
    if p.shape != t.shape:
        raise ValueError(f"masks differ in shape: {p.shape} vs {t.shape}")
    total = int(np.count_nonzero(p)) + int(np.count_nonzero(t))
    if total == 0:
        return 1.0 if both_empty == "one" else NAN
    return 2.0 * int(np.count_nonzero(p & t)) / total


def segmentation_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    spacing: tuple[float, ...] | None = None,
    both_empty: Literal["one", "nan"] = "one",
) -> SegmentationMetrics:
    """Dice, IoU, sensitivity, precision and HD95 of one case.

    Parameters
    ----------
    pred, truth
        Masks of the same shape ``(Y, X)`` or ``(Z, Y, X)``; non-zero is foreground.
    spacing
        Voxel size in mm along each axis (``(z, y, x)`` for 3D); 1 per axis if omitted (then
        HD95 is in voxels).
    both_empty
        Score of a case where truth and prediction are both empty (see the module docstring).
    """
    if both_empty not in ("one", "nan"):
        raise InputError(f"both_empty must be 'one' or 'nan', got {both_empty!r}")
    p, t, spacing = _check_pair(pred, truth, spacing)
    n_p, n_t = int(p.sum()), int(t.sum())
    inter = int(np.count_nonzero(p & t))
    if n_p == 0 and n_t == 0:
        perfect = 1.0 if both_empty == "one" else NAN
        return SegmentationMetrics(
            perfect, perfect, NAN, NAN, 0.0 if both_empty == "one" else NAN, 0, 0, "both"
        )
    dice = 2.0 * inter / (n_p + n_t)
    iou = inter / (n_p + n_t - inter)
    sens = inter / n_t if n_t else NAN
    prec = inter / n_p if n_p else NAN
    empty = "truth" if n_t == 0 else "prediction" if n_p == 0 else ""
    distance = hd95(p, t, spacing=spacing) if not empty else NAN
    return SegmentationMetrics(dice, iou, sens, prec, distance, n_t, n_p, empty)


@dataclass(frozen=True)
class MetricSummary:
    """Summary of one metric over cases (NaNs skipped; ``n`` cases used)."""

    n: int
    mean: float
    sd: float
    median: float
    q1: float
    q3: float
    ci: tuple[float, float]


def summarize(values: np.ndarray | list[float], *, level: float = 0.95) -> MetricSummary:
    """Mean ± SD, median [IQR] and a t-based CI of the mean, over the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return MetricSummary(0, NAN, NAN, NAN, NAN, NAN, (NAN, NAN))
    mean = float(v.mean())
    sd = float(v.std(ddof=1)) if n > 1 else NAN
    q1, med, q3 = (float(x) for x in np.percentile(v, [25, 50, 75]))
    if n > 1:
        half = float(student_t.ppf(0.5 + level / 2.0, n - 1)) * sd / np.sqrt(n)
        ci = (mean - half, mean + half)
    else:
        ci = (NAN, NAN)
    return MetricSummary(n, mean, sd, med, q1, q3, ci)


@dataclass(frozen=True)
class DiceBootstrap:
    """Pooled and per-case mean Dice with percentile bootstrap CIs (cases resampled).

    ``pooled`` = ``2 sum|P∩T| / (sum|P| + sum|T|)`` over the cases; ``mean`` = mean per-case Dice
    (a case with both masks empty counts 1); the CIs resample cases with replacement
    (Efron and Tibshirani, "An introduction to the bootstrap", 1993, percentile interval).
    """

    n: int
    pooled: float
    pooled_ci: tuple[float, float]
    mean: float
    mean_ci: tuple[float, float]


def _pooled_rows(tp: np.ndarray, n_pred: np.ndarray, n_true: np.ndarray) -> np.ndarray:
    denom = n_pred.sum(axis=-1) + n_true.sum(axis=-1)
    return np.where(denom > 0, 2.0 * tp.sum(axis=-1) / np.maximum(denom, 1), NAN)


def _per_case(tp: np.ndarray, n_pred: np.ndarray, n_true: np.ndarray) -> np.ndarray:
    denom = n_pred + n_true
    return np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 1.0)


def dice_bootstrap(
    counts: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> DiceBootstrap:
    """Bootstrap CIs of the pooled and mean per-case Dice from per-case pixel counts.

    Parameters
    ----------
    counts
        ``(N, 3)`` integers per case: true positives, predicted and true foreground pixels.
    """
    c = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    if c.shape[0] == 0:
        return DiceBootstrap(0, NAN, (NAN, NAN), NAN, (NAN, NAN))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, c.shape[0], size=(n_boot, c.shape[0]))
    tp, n_pred, n_true = c[:, 0], c[:, 1], c[:, 2]
    per = _per_case(tp, n_pred, n_true)
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    pooled_reps = _pooled_rows(tp[idx], n_pred[idx], n_true[idx])
    mean_reps = per[idx].mean(axis=1)
    lo_p, hi_p = np.nanpercentile(pooled_reps, q)
    lo_m, hi_m = np.percentile(mean_reps, q)
    return DiceBootstrap(
        int(c.shape[0]), float(_pooled_rows(tp, n_pred, n_true)), (float(lo_p), float(hi_p)),
        float(per.mean()), (float(lo_m), float(hi_m)),
    )


def dice_difference_bootstrap(
    counts_a: np.ndarray, counts_b: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float | tuple[float, float]]:
    """Paired bootstrap of pooled Dice A - B on the same cases (same resampled cases for both).

    Returns the difference, its percentile CI and the share of replicates with A > B.
    """
    a = np.asarray(counts_a, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(counts_b, dtype=np.float64).reshape(-1, 3)
    if a.shape != b.shape:
        raise InputError(f"paired Dice needs the same cases, got {a.shape[0]} and {b.shape[0]}")
    idx = np.random.default_rng(seed).integers(0, a.shape[0], size=(n_boot, a.shape[0]))
    diff = _pooled_rows(*(a[idx, k] for k in range(3))) - _pooled_rows(*(b[idx, k] for k in range(3)))
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    lo, hi = np.nanpercentile(diff, q)
    point = float(_pooled_rows(*a.T) - _pooled_rows(*b.T))
    return {"difference": point, "ci": (float(lo), float(hi)), "share_a_better": float(np.mean(diff > 0))}
