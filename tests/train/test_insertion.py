"""Lesions inserted into HU slices: inside the lungs, with the HU their label says."""

from __future__ import annotations

import numpy as np
import pytest

from pneumolens.synthetic import make_chest_phantom
from pneumolens.train.insertion import PATTERNS, insert_lesions, lung_mask_2d


@pytest.fixture(scope="module")
def slice_and_lungs():
    ph = make_chest_phantom(shape=(8, 160, 160), spacing=(10.0, 2.2, 2.2), seed=2, lesions=())
    hu = ph.volume[4].astype(np.float32)
    return hu, lung_mask_2d(hu, pixel_mm=2.2), ph.lung_labels[4] > 0


def test_rough_lung_mask_matches_phantom_lungs(slice_and_lungs) -> None:
    _, rough, truth = slice_and_lungs
    dice = 2 * (rough & truth).sum() / (rough.sum() + truth.sum())
    assert dice > 0.9


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inserted_lesions_inside_lungs_with_expected_hu(slice_and_lungs, pattern: str, seed: int) -> None:
    hu, lungs, _ = slice_and_lungs
    out = insert_lesions(hu, lungs, pixel_mm=2.2, rng=np.random.default_rng(seed), pattern=pattern)
    assert out.pattern == pattern and out.hu.shape == hu.shape
    assert out.labels.any(), "every pattern must insert something"
    assert not out.labels[~lungs].any()
    assert hu.dtype == np.float32 and not np.shares_memory(out.hu, hu)
    # GGO raises attenuation (vessels kept), consolidation raises it to soft-tissue levels.
    for label, lo, hi in ((1, -800.0, -250.0), (2, -250.0, 150.0)):
        sel = out.labels == label
        if sel.sum() > 20:
            assert lo <= float(np.median(out.hu[sel])) <= hi
            assert float(np.median(out.hu[sel] - hu[sel])) > 100.0


def test_same_seed_same_lesions(slice_and_lungs) -> None:
    hu, lungs, _ = slice_and_lungs
    a = insert_lesions(hu, lungs, pixel_mm=2.2, rng=np.random.default_rng(7))
    b = insert_lesions(hu, lungs, pixel_mm=2.2, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.hu, b.hu)


def test_unknown_pattern_raises(slice_and_lungs) -> None:
    hu, lungs, _ = slice_and_lungs
    with pytest.raises(ValueError, match="pattern must be one of"):
        insert_lesions(hu, lungs, pixel_mm=2.2, rng=np.random.default_rng(0), pattern="apical")
