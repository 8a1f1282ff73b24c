"""The fixed physical grid on which the lobe network sees the lungs (shared by training and inference).

The lobe model maps the two lung masks to five lobes. It works on a grid of
:data:`GRID_SHAPE` voxels of :data:`GRID_MM` mm, centred on the centre of the lungs' bounding
box, axes along the canonical ``[z, y, x]`` LPS axes. Lung masks (or, in training, one channel
per lobe) are resampled onto it by trilinear interpolation of their occupancy fractions, so the
network input is the same whatever the scan's voxel size. Training adds scale, rotation and
shift through :func:`sample_on_grid`'s ``matrix`` and ``centre_mm``; inference uses identity.

No torch here: this module is imported by the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from pneumolens.grid import block_mean, reduction_factors

#: Network grid ``(z, y, x)`` in voxels; each axis divisible by 8 (three poolings).
GRID_SHAPE: tuple[int, int, int] = (64, 56, 80)
#: Grid voxel size (mm, isotropic): 320 x 280 x 400 mm, room for the largest lungs of the 250 maps.
GRID_MM = 5.0
#: Source masks are first block-averaged to about this voxel size (mm) before interpolation.
PRE_MM = (2.5, 2.5, 2.5)


def lungs_centre_mm(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Centre of the bounding box of ``mask`` (bool ``[z, y, x]``) in mm from voxel ``(0, 0, 0)``."""
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    if any(i.size == 0 for i in idx):
        raise ValueError("empty mask: no lungs to place on the lobe grid")
    return np.array([(i[0] + i[-1]) / 2.0 * s for i, s in zip(idx, spacing)], dtype=float)


def grid_points_mm(
    centre_mm: Sequence[float], *, matrix: np.ndarray | None = None, shape: Sequence[int] = GRID_SHAPE,
    grid_mm: float = GRID_MM,
) -> np.ndarray:
    """Source positions (mm from voxel ``(0, 0, 0)``, ``(3, Z, Y, X)``) of the grid's voxel centres.

    ``matrix`` (3x3, default identity) maps grid offsets (mm) to source offsets (mm): scale and
    rotation augmentation in training.
    """
    axes = [(np.arange(n, dtype=np.float32) - (n - 1) / 2.0) * grid_mm for n in shape]
    offs = np.stack(np.meshgrid(*axes, indexing="ij"))
    if matrix is not None:
        offs = np.einsum("ij,jzyx->izyx", np.asarray(matrix, dtype=np.float32), offs)
    return offs + np.asarray(centre_mm, dtype=np.float32)[:, None, None, None]


def sample_on_grid(
    channels: np.ndarray, spacing: Sequence[float], centre_mm: Sequence[float], *,
    matrix: np.ndarray | None = None, shape: Sequence[int] = GRID_SHAPE, grid_mm: float = GRID_MM,
) -> np.ndarray:
    """Trilinear resampling of ``channels`` (``(C, Z, Y, X)`` float fractions) onto the lobe grid.

    Outside the source volume the value is 0. Returns float32 ``(C, *shape)``.
    """
    pts = grid_points_mm(centre_mm, matrix=matrix, shape=shape, grid_mm=grid_mm)
    idx = pts / np.asarray(spacing, dtype=np.float32)[:, None, None, None]
    return np.stack([
        ndimage.map_coordinates(c, idx, order=1, mode="constant", cval=0.0, prefilter=False).astype(np.float32)
        for c in channels
    ])


def reduce_masks(
    masks: Sequence[np.ndarray], spacing: Sequence[float]
) -> tuple[np.ndarray, tuple[float, float, float], tuple[int, int, int]]:
    """Block-average boolean masks to about :data:`PRE_MM` (anti-aliasing before interpolation).

    Returns ``(C, z, y, x)`` fractions, their voxel size (mm) and the block factors.
    """
    factors = reduction_factors(spacing, PRE_MM)
    reduced = np.stack([block_mean(np.asarray(m, dtype=np.uint8), factors) for m in masks])
    # block_mean's block k covers source voxels k*f .. k*f+f-1: its centre is at (k + (f-1)/(2f)) * f.
    return reduced, tuple(s * f for s, f in zip(spacing, factors)), tuple(factors)


def lung_input(
    right: np.ndarray, left: np.ndarray, spacing: Sequence[float], *, offset_mm: Sequence[float] = (0.0, 0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Network input ``(2, *GRID_SHAPE)`` (right, left lung fractions) and the grid centre (mm).

    ``right``/``left`` are boolean ``[z, y, x]`` masks on a grid of ``spacing`` mm. Only the
    lungs' bounding box is reduced and resampled (positions stay relative to voxel ``(0, 0, 0)``).
    The grid is centred on the lungs' bounding box, moved by ``offset_mm`` (``(z, y, x)``; a
    shifted view of the same lungs, for test-time averaging).
    """
    union = right | left
    centre = lungs_centre_mm(union, spacing) + np.asarray(offset_mm, dtype=float)
    idx = [np.flatnonzero(union.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    box = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in idx)
    origin_mm = np.array([b.start * s for b, s in zip(box, spacing)])
    reduced, rsp, factors = reduce_masks([right[box], left[box]], spacing)
    # Centre of reduced voxel k, in source voxels of the box, is k*f + (f-1)/2: shift the grid by that offset.
    shift = np.array([(f - 1) / 2.0 * s for f, s in zip(factors, spacing)])
    return sample_on_grid(reduced, rsp, centre - origin_mm - shift), centre


def grid_index_of(points_mm: np.ndarray, centre_mm: Sequence[float], *, shape: Sequence[int] = GRID_SHAPE,
                  grid_mm: float = GRID_MM) -> np.ndarray:
    """Fractional grid indices of source positions ``points_mm`` (``(3, ...)``, mm from voxel 0)."""
    c = np.asarray(centre_mm, dtype=np.float32).reshape((3,) + (1,) * (points_mm.ndim - 1))
    half = np.asarray([(n - 1) / 2.0 for n in shape], dtype=np.float32).reshape(c.shape)
    return (points_mm - c) / grid_mm + half
