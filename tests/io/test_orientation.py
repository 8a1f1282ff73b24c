"""Reorientation to the canonical [z, y, x] LPS layout."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pneumolens.io.orientation import (
    affine_from_axes,
    canonical_reorientation,
    orientation_label,
    reoriented_affine,
    spacing_of,
)

_AXES = np.eye(3)


def _signed_permutations():
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            yield np.array([signs[a] * _AXES[perm[a]] for a in range(3)])


@pytest.mark.parametrize("axes", list(_signed_permutations()), ids=lambda a: str(a.astype(int).tolist()))
def test_every_axis_layout_maps_to_canonical(axes):
    rng = np.random.default_rng(0)
    source = rng.integers(-1000, 1000, size=(3, 4, 5))
    affine = affine_from_axes(np.array([10.0, -20.0, 30.0]), axes, (1.5, 2.0, 2.5))
    reorientation = canonical_reorientation(affine)
    canonical = reorientation.apply(source)
    new_affine = reoriented_affine(affine, reorientation, source.shape)
    # Canonical axes run along +z, +y, +x.
    np.testing.assert_allclose(np.abs(new_affine[:3, :3]) > 0, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    assert np.all(new_affine[:3, :3][[2, 1, 0], [0, 1, 2]] > 0)
    # Every voxel keeps its physical position.
    for index in itertools.product(*(range(n) for n in source.shape)):
        world = affine @ np.array([*index, 1.0])
        k, j, i = np.rint(np.linalg.solve(new_affine, world)[:3]).astype(int)
        assert canonical[k, j, i] == source[index]
    assert sorted(spacing_of(new_affine)) == [1.5, 2.0, 2.5]


def test_degenerate_affine_is_refused():
    affine = affine_from_axes(np.zeros(3), np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]]), (1, 1, 1))
    with pytest.raises(ValueError, match="degenerate orientation"):
        canonical_reorientation(affine)


@pytest.mark.parametrize(
    ("normal", "label"),
    [((0, 0, 1), "axial"), ((0, 0, -1), "axial"), ((0, 1, 0), "coronal"), ((1, 0, 0), "sagittal"),
     ((0.0, 0.3, 0.95), "axial"), ((0.7, 0.0, 0.71), "oblique")],
)
def test_orientation_label(normal, label):
    n = np.asarray(normal, dtype=float)
    assert orientation_label(n / np.linalg.norm(n)) == label
