"""Mask objects: validation, and lungs completed with voxels a later stage found."""

from __future__ import annotations

import numpy as np
import pytest

from pneumolens.masks import LEFT_LUNG, RIGHT_LUNG, LungMasks


def _two_lungs() -> LungMasks:
    labels = np.zeros((6, 20, 30), np.uint8)
    labels[:, 5:15, 2:12] = RIGHT_LUNG
    labels[:, 5:15, 18:28] = LEFT_LUNG
    return LungMasks(labels=labels, airways=np.zeros(labels.shape, bool))


def test_with_added_takes_the_nearest_lung_label() -> None:
    lungs = _two_lungs()
    add = np.zeros(lungs.labels.shape, bool)
    add[2:4, 15:18, 3:8] = True  # below the right lung
    add[2:4, 15:18, 22:26] = True  # below the left lung
    add[0, 6, 4] = True  # already right lung: unchanged
    out = lungs.with_added(add)
    assert (out.labels[2:4, 15:18, 3:8] == RIGHT_LUNG).all()
    assert (out.labels[2:4, 15:18, 22:26] == LEFT_LUNG).all()
    assert out.union.sum() == lungs.union.sum() + 2 * 3 * 5 + 2 * 3 * 4
    assert out.airways is lungs.airways
    assert lungs.labels[2, 16, 4] == 0, "the original masks are not modified"


def test_with_added_nothing_returns_same_object() -> None:
    lungs = _two_lungs()
    assert lungs.with_added(np.zeros(lungs.labels.shape, bool)) is lungs


def test_with_added_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="differs from lungs shape"):
        _two_lungs().with_added(np.zeros((2, 2, 2), bool))


def test_lesion_evidence_within_lungs_drops_outside_and_small_components() -> None:
    from pneumolens.masks import LesionEvidence

    lungs = _two_lungs()
    labels = np.zeros(lungs.labels.shape, np.uint8)
    labels[lungs.union] = 1
    labels[~lungs.union] = 2
    probability = np.full(labels.shape, 0.7, np.float32)
    evidence = LesionEvidence(labels, probability, "model:x")
    inside = evidence.within(lungs, (1.0, 1.0, 1.0))
    assert not inside.labels[~lungs.union].any() and (inside.labels[lungs.union] == 1).all()
    assert (inside.probability[~lungs.union] == 0).all()
    np.testing.assert_array_equal(evidence.outside(lungs), ~lungs.union)
    big = LesionEvidence(labels, probability, "model:x", min_component_ml=1e6)
    assert not big.within(lungs, (1.0, 1.0, 1.0)).labels.any()


@pytest.mark.parametrize("with_box", [False, True])
def test_lesion_evidence_within_consume_equals_a_copy_in_its_own_arrays(with_box: bool) -> None:
    from pneumolens.masks import LesionEvidence

    lungs = _two_lungs()
    rng = np.random.default_rng(3)
    box = (slice(1, 5), slice(3, 17), slice(0, 30)) if with_box else None
    labels = np.zeros(lungs.labels.shape, np.uint8)
    probability = np.zeros(lungs.labels.shape, np.float32)
    region = box or (slice(None),) * 3
    labels[region] = rng.integers(0, 3, labels[region].shape)
    probability[region] = rng.random(labels[region].shape, dtype=np.float32)
    kept = LesionEvidence(labels.copy(), probability.copy(), "model:x", min_component_ml=0.004, box=box)
    expected = kept.within(lungs, (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(kept.labels, labels)  # without consume: the evidence is unchanged
    evidence = LesionEvidence(labels, probability, "model:x", min_component_ml=0.004, box=box)
    got = evidence.within(lungs, (1.0, 1.0, 1.0), consume=True)
    assert got.labels is labels and got.probability is probability
    np.testing.assert_array_equal(got.labels, expected.labels)
    np.testing.assert_array_equal(got.probability, expected.probability)
    assert expected.labels.any() and not expected.labels[~lungs.union].any()
