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

_CHUNK = 256  # replicates per draw block (the random stream is drawn in these blocks)
#: Working memory of the bootstrap (bytes): above it, the resampling indices of a block are
#: streamed a few replicates at a time instead of being drawn as whole ``(256, N)`` matrices.
MEMORY_BUDGET = 256 * 1024**2
#: Bytes per resampled value while AUCs of a block are computed (indices, values, ranks, sort).
_BYTES_PER_VALUE = 64


def _check_n(n_boot: int) -> None:
    if int(n_boot) != n_boot or n_boot < 2:
        raise InputError(
            f"the number of bootstrap replicates must be an integer >= 2, got {n_boot}"
        )


def _rows_per_block(m: int, n: int) -> int:
    """Replicates whose resampled values fit :data:`MEMORY_BUDGET` at once (at least one)."""
    return max(1, MEMORY_BUDGET // ((m + n) * _BYTES_PER_VALUE))


def resample_indices(
    m: int, n: int, n_boot: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield blocks of stratified resampling indices, shapes ``(b, m)`` and ``(b, n)``.

    The random stream is that of ``rng.integers(0, m, size=(b, m))`` then
    ``rng.integers(0, n, size=(b, n))`` per block of :data:`_CHUNK` replicates, whatever the
    memory: when a block's matrices would exceed :data:`MEMORY_BUDGET`, the same values are
    produced a few rows at a time by :class:`_BoundedStream` (bounded memory, identical results).
    """
    rows = _rows_per_block(m, n)
    done = 0
    while done < n_boot:
        b = min(_CHUNK, n_boot - done)
        if rows >= b:
            yield rng.integers(0, m, size=(b, m)), rng.integers(0, n, size=(b, n))
        else:
            yield from _streamed_block(m, n, b, rows, rng)
        done += b


class _BoundedStream:
    """The values of one ``Generator.integers(0, bound, size=count)`` call (int64 result,
    ``bound < 2**32``), produced piece by piece with the same random numbers.

    NumPy draws such integers with Lemire's method on 32-bit halves of 64-bit raw numbers, low
    half first; a half is rejected when ``(half * bound) mod 2**32`` is below
    ``(2**32 - bound) mod bound``; a half left over at the end of the call stays buffered in the
    bit generator (``has_uint32``/``uinteger``) and starts the next call (Lemire,
    ACM TOMACS 29(1), 2019; numpy ``random_bounded_uint64_fill``). ``test_bootstrap`` checks the
    identity with ``Generator.integers``.
    """

    def __init__(self, bit_generator, bound: int, count: int):
        self.bitgen, self.bound, self.remaining = bit_generator, bound, count
        self.threshold = np.uint64((2**32 - bound) % bound) if bound > 1 else np.uint64(0)
        state = bit_generator.state
        # The bit generator keeps a half it has not handed out yet (``has_uint32``): it comes first.
        self.carry = np.array([state["uinteger"]] if state["has_uint32"] else [], dtype=np.uint64)
        self._store_carry()

    def _store_carry(self) -> None:
        """Put the unconsumed half (if any) back into the bit generator, as numpy leaves it."""
        state = self.bitgen.state
        state["has_uint32"] = int(self.carry.size > 0)
        state["uinteger"] = int(self.carry[0]) if self.carry.size else 0
        self.bitgen.state = state

    def take(self, k: int) -> np.ndarray:
        """The next ``k`` values of the call."""
        if self.bound == 1:  # numpy draws nothing for a single possible value
            self.remaining -= k
            return np.zeros(k, dtype=np.int64)
        parts, need = [], k
        while need:
            n_raw = max(0, (need - self.carry.size + 1) // 2)
            raw = self.bitgen.random_raw(n_raw) if n_raw else np.empty(0, dtype=np.uint64)
            halves = np.empty(2 * raw.size, dtype=np.uint64)
            halves[0::2] = raw & np.uint64(0xFFFFFFFF)
            halves[1::2] = raw >> np.uint64(32)
            halves = np.concatenate([self.carry, halves])
            product = halves * np.uint64(self.bound)
            accepted = np.flatnonzero((product & np.uint64(0xFFFFFFFF)) >= self.threshold)
            used = accepted[:need]
            parts.append((product[used] >> np.uint64(32)).astype(np.int64))
            consumed = int(used[-1]) + 1 if used.size == need and need else halves.size
            self.carry = halves[consumed:]
            need -= used.size
        self.remaining -= k
        if self.remaining == 0:
            self._store_carry()  # the call's left-over half stays buffered for the next call
        return np.concatenate(parts)


def _streamed_block(
    m: int, n: int, b: int, rows: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One block of ``b`` replicates as sub-blocks of ``rows``, from the stream ``rng`` would
    give for the whole block; ``rng`` ends where the whole-block draws would leave it."""
    bitgen = rng.bit_generator
    start = bitgen.state
    counter = _BoundedStream(bitgen, m, b * m)  # run through the cases' call: the controls' starts after it
    while counter.remaining:
        counter.take(min(1 << 20, counter.remaining))
    cases_gen = type(bitgen)()
    cases_gen.state = start
    cases = _BoundedStream(cases_gen, m, b * m)
    controls = _BoundedStream(bitgen, n, b * n)
    for first in range(0, b, rows):
        r = min(rows, b - first)
        yield cases.take(r * m).reshape(r, m), controls.take(r * n).reshape(r, n)
    # bitgen now stands after the controls' call, as after whole-block draws


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
