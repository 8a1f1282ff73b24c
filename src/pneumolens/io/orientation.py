"""Affines and reorientation to the canonical ``[z, y, x]`` LPS layout.

An affine here is a 4x4 matrix mapping an array index, in the array's axis order, to LPS patient
coordinates ``(x, y, z)`` in mm (DICOM's patient coordinate system: +x left, +y posterior,
+z superior). The canonical layout of :class:`~pneumolens.io.scan.CTScan` has array axis 0
along +z, axis 1 along +y and axis 2 along +x, so its affine has a positive diagonal-dominant
matrix with columns ordered z, y, x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Canonical array axis c runs along LPS patient axis _CANONICAL_PATIENT_AXIS[c] (0=x, 1=y, 2=z).
_CANONICAL_PATIENT_AXIS = (2, 1, 0)


@dataclass(frozen=True)
class Reorientation:
    """How to bring a source array to the canonical layout.

    ``canonical = np.flip(np.transpose(source, permutation), flips)``; see
    :attr:`pneumolens.io.scan.CTScan.source_axes`.
    """

    permutation: tuple[int, int, int]
    flips: tuple[int, ...]

    def apply(self, array: np.ndarray) -> np.ndarray:
        out = np.transpose(array, self.permutation)
        return np.flip(out, self.flips) if self.flips else out


def affine_from_axes(origin: np.ndarray, axes: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Build an index->LPS affine.

    Parameters
    ----------
    origin
        LPS position (mm) of the voxel with index ``(0, 0, 0)``.
    axes
        ``(3, 3)``: row ``a`` is the unit LPS direction of array axis ``a``.
    spacing
        Step along each array axis in mm.
    """
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(axes, dtype=float).T * np.asarray(spacing, dtype=float)
    affine[:3, 3] = origin
    return affine


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel step along each array axis (mm): the column norms of the affine."""
    return tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))  # type: ignore[return-value]


def canonical_reorientation(affine: np.ndarray) -> Reorientation:
    """The axis permutation and flips that make ``affine``'s array canonical.

    Each array axis is assigned to the patient axis its direction is closest to; oblique
    directions are kept (the affine stays exact), only the array is permuted and flipped.

    Raises
    ------
    ValueError
        If two array axes point mainly along the same patient axis (degenerate affine).
    """
    directions = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    # patient_axis[a]: which LPS axis array axis a runs along; sign: along + or -.
    patient_axis = np.argmax(np.abs(directions), axis=0)
    if len(set(patient_axis.tolist())) != 3:
        raise ValueError(f"degenerate orientation: array axes map to patient axes {patient_axis.tolist()}")
    permutation = tuple(int(np.flatnonzero(patient_axis == p)[0]) for p in _CANONICAL_PATIENT_AXIS)
    flips = tuple(
        c for c, a in enumerate(permutation) if directions[patient_axis[a], a] < 0
    )
    return Reorientation(permutation, flips)  # type: ignore[arg-type]


def reoriented_affine(affine: np.ndarray, reorientation: Reorientation, shape: tuple[int, ...]) -> np.ndarray:
    """The affine of ``reorientation.apply(array)`` given the source ``affine`` and ``shape``."""
    permuted = np.eye(4)
    permuted[:3, :3] = affine[:3, :3][:, list(reorientation.permutation)]
    permuted[:3, 3] = affine[:3, 3]
    permuted_shape = [shape[a] for a in reorientation.permutation]
    for c in reorientation.flips:
        # index k in the flipped axis is index n-1-k in the unflipped one.
        permuted[:3, 3] = permuted[:3, 3] + permuted[:3, c] * (permuted_shape[c] - 1)
        permuted[:3, c] = -permuted[:3, c]
    return permuted


def orientation_label(normal: np.ndarray, *, tolerance: float = 0.8) -> str:
    """``"axial"``, ``"coronal"``, ``"sagittal"`` or ``"oblique"`` for a slice normal (LPS)."""
    normal = np.abs(np.asarray(normal, dtype=float))
    axis = int(np.argmax(normal))
    if normal[axis] < tolerance:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]
