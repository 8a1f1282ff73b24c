"""Stratified bootstrap of AUCs."""

from __future__ import annotations

import numpy as np
import pytest

from pneumolens.errors import InputError
from pneumolens.validate.bootstrap import (
    auc_rows,
    bootstrap_aucs,
    bootstrap_ci,
    percentile_ci,
)
from pneumolens.validate.delong import delong_ci
from pneumolens.validate.roc import mann_whitney_auc, roc_from_groups


def test_auc_rows_equals_per_row_mann_whitney():
    rng = np.random.default_rng(0)
    cases = np.round(rng.normal(1, 1, size=(6, 15)), 1)
    controls = np.round(rng.normal(0, 1, size=(6, 20)), 1)
    expected = [mann_whitney_auc(c, k) for c, k in zip(cases, controls)]
    np.testing.assert_allclose(auc_rows(cases, controls), expected, atol=1e-14)


def test_seeded_bootstrap_is_reproducible_and_seed_dependent():
    rng = np.random.default_rng(1)
    roc = roc_from_groups(rng.normal(1, 1, 60), rng.normal(0, 1, 80))
    a = bootstrap_ci(roc, n_boot=500, seed=42)
    assert a == bootstrap_ci(roc, n_boot=500, seed=42)
    assert a != bootstrap_ci(roc, n_boot=500, seed=43)


def test_bootstrap_ci_agrees_with_delong_on_a_large_sample():
    rng = np.random.default_rng(2)
    roc = roc_from_groups(rng.normal(1, 1, 300), rng.normal(0, 1, 400))
    boot = bootstrap_ci(roc, n_boot=1000, seed=0)
    delong = delong_ci(roc)
    np.testing.assert_allclose(boot, delong, atol=0.01)


def test_paired_replicates_share_resamples():
    rng = np.random.default_rng(3)
    x, y = rng.normal(1, 1, 30), rng.normal(0, 1, 40)
    roc = roc_from_groups(x, y)
    reps = bootstrap_aucs(roc, roc, n_boot=300, seed=0, paired=True)
    np.testing.assert_array_equal(reps[0], reps[1])
    unpaired = bootstrap_aucs(roc, roc, n_boot=300, seed=0, paired=False)
    assert not np.array_equal(unpaired[0], unpaired[1])


def test_percentile_ci_is_R_type_7():
    # quantile(1:10, c(.025, .975)) in R (type 7) = 1.225, 9.775.
    assert percentile_ci(np.arange(1.0, 11.0)) == pytest.approx((1.225, 9.775))


def test_bad_replicate_count():
    with pytest.raises(InputError, match=">= 2"):
        bootstrap_ci(roc_from_groups([1, 2], [0, 1]), n_boot=1)


@pytest.mark.parametrize(("m", "n", "n_boot"), [(1, 7, 300), (37, 41, 520), (500, 333, 260), (2, 1, 5), (2999, 5001, 258)])
def test_streamed_resampling_is_identical_to_whole_block_draws(monkeypatch, m, n, n_boot):
    """Bounded memory (issue 10: 13.1 GB for 200 replicates of 1 M rows) without other numbers:
    with a tiny memory budget the indices are streamed a few replicates at a time, and every
    index equals what ``Generator.integers`` gives for the whole block."""
    from pneumolens.validate import bootstrap

    whole = [np.concatenate(parts) for parts in zip(*bootstrap.resample_indices(m, n, n_boot, np.random.default_rng(3)))]
    monkeypatch.setattr(bootstrap, "MEMORY_BUDGET", 1)
    blocks = list(bootstrap.resample_indices(m, n, n_boot, np.random.default_rng(3)))
    assert max(len(ic) for ic, _ in blocks) == 1  # one replicate at a time
    streamed = [np.concatenate(parts) for parts in zip(*blocks)]
    np.testing.assert_array_equal(streamed[0], whole[0])
    np.testing.assert_array_equal(streamed[1], whole[1])


def test_bootstrap_aucs_identical_with_a_small_memory_budget(monkeypatch):
    from pneumolens.validate import bootstrap
    from pneumolens.validate.roc import roc_curve

    rng = np.random.default_rng(0)
    truth = rng.random(900) < 0.3
    score = rng.normal(size=900) + truth
    a, b = roc_curve(truth, score), roc_curve(truth, score + rng.normal(size=900))
    expected = bootstrap.bootstrap_aucs(a, b, n_boot=300, seed=5)
    unpaired = bootstrap.bootstrap_aucs(a, b, n_boot=300, seed=5, paired=False)
    monkeypatch.setattr(bootstrap, "MEMORY_BUDGET", 200_000)
    np.testing.assert_array_equal(bootstrap.bootstrap_aucs(a, b, n_boot=300, seed=5), expected)
    np.testing.assert_array_equal(bootstrap.bootstrap_aucs(a, b, n_boot=300, seed=5, paired=False), unpaired)
