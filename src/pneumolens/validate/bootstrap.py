"""Stratified bootstrap of AUCs (pROC's ``ci.auc(method="bootstrap")`` and bootstrap test).

Each replicate resamples the cases and the controls separately, with replacement, keeping their
numbers fixed (``boot.stratified = TRUE`` in pROC), so every replicate has both classes. The
confidence interval is the percentile interval (quantile type 7, as R's default). Results are
reproducible through ``seed``; they are not bit-identical to pROC, whose random numbers differ.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.stats import rankdata

from pneumolens.errors import InputError
from pneumolens.validate.roc import RocCurve

_CHUNK = 256  # replicates per vectorised block: bounds memory at 256 x N floats


def _check_n(n_boot: int) -> None:
    if int(n_boot) != n_boot or n_boot < 2:
        raise InputError(
            f"the number of bootstrap replicates must be an integer >= 2, got {n_boot}"
        )


def resample_indices(
    m: int, n: int, n_boot: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield blocks of stratified resampling indices, shapes ``(b, m)`` and ``(b, n)``."""
    done = 0
    while done < n_boot:
        b = min(_CHUNK, n_boot - done)
        yield rng.integers(0, m, size=(b, m)), rng.integers(0, n, size=(b, n))
        done += b


def auc_rows(cases: np.ndarray, controls: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of each row: ``cases (b, m)``, ``controls (b, n)`` -> ``(b,)``."""
    m, n = cases.shape[1], controls.shape[1]
    ranks = rankdata(np.concatenate([cases, controls], axis=1), axis=1)
    return (ranks[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)


def bootstrap_aucs(
    *rocs: RocCurve, n_boot: int = 2000, seed: int | None = None, paired: bool = True
) -> np.ndarray:
    """Bootstrap replicates of the AUC of one or several curves, shape ``(k, n_boot)``.

    With ``paired=True`` the curves must share their cases (same order) and every replicate uses
    the same resampled cases for all curves; with ``paired=False`` each curve is resampled
    independently (from one random stream, in order).
    """
    _check_n(n_boot)
    rng = np.random.default_rng(seed)
    if paired:
        sizes = {(r.n_cases, r.n_controls) for r in rocs}
        if len(sizes) != 1:
            raise InputError(
                f"paired bootstrap needs curves on the same cases, got sizes {sorted(sizes)}"
            )
        out = np.empty((len(rocs), n_boot))
        start = 0
        for ic, jc in resample_indices(rocs[0].n_cases, rocs[0].n_controls, n_boot, rng):
            for k, r in enumerate(rocs):
                out[k, start : start + len(ic)] = auc_rows(r.cases[ic], r.controls[jc])
            start += len(ic)
        return out
    rows = []
    for r in rocs:
        parts = [
            auc_rows(r.cases[ic], r.controls[jc])
            for ic, jc in resample_indices(r.n_cases, r.n_controls, n_boot, rng)
        ]
        rows.append(np.concatenate(parts))
    return np.stack(rows)


def percentile_ci(replicates: np.ndarray, *, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (R quantile type 7)."""
    if not 0.0 < level < 1.0:
        raise InputError(f"confidence level must be in (0, 1), got {level}")
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(finite, [0.5 - level / 2.0, 0.5 + level / 2.0])
    return (float(lo), float(hi))


def bootstrap_ci(
    roc: RocCurve, *, n_boot: int = 2000, seed: int | None = None, level: float = 0.95
) -> tuple[float, float]:
    """Stratified percentile bootstrap CI of the AUC."""
    return percentile_ci(bootstrap_aucs(roc, n_boot=n_boot, seed=seed)[0], level=level)
