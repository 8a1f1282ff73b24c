"""Cross-validation folds of the lobe model's training recipe (``--fold K --folds 5``)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")
pytest.importorskip("monai", reason="training needs the 'train' extra (monai)")

from pneumolens.train.lobes import fold_cases, split_cases

CASES = [f"s{i:04d}" for i in range(3, 1500, 6)]  # 250 ids, not contiguous, given unsorted below


@pytest.mark.parametrize("n_cases, folds", [(250, 5), (23, 5), (250, 3)])
def test_folds_partition_the_cases_and_never_share_one(n_cases, folds):
    cases = CASES[:n_cases][::-1]
    splits = [fold_cases(cases, k, folds) for k in range(1, folds + 1)]
    tests = [set(s["test"]) for s in splits]
    assert set().union(*tests) == set(cases)
    assert sum(len(t) for t in tests) == n_cases  # disjoint test folds
    assert max(len(t) for t in tests) - min(len(t) for t in tests) <= 1
    for s in splits:
        train, val, test = set(s["train"]), set(s["val"]), set(s["test"])
        assert not (train & val or train & test or val & test)
        assert train | val | test == set(cases)
        assert val, "every fold has a validation subset of its own training maps"


def test_fold_1_holds_out_the_fixed_test_and_validation_maps():
    fixed = split_cases(CASES)
    fold = fold_cases(CASES, 1, 5)
    assert set(fixed["test"]) | set(fixed["val"]) == set(fold["test"])
    assert set(fold["train"]) | set(fold["val"]) == set(fixed["train"])
    assert (len(fold["train"]), len(fold["val"]), len(fold["test"])) == (175, 25, 50)


def test_fold_outside_the_range_is_refused():
    with pytest.raises(ValueError, match="not in 1..5"):
        fold_cases(CASES, 0, 5)
