"""Grid helpers shared by the anatomy, lesion and findings stages: bounding boxes, reduced working grids, slice-wise fills."""

from __future__ import annotations

from collections.abc import Sequence

import cc3d
import fill_voids
import numpy as np


def check_volume(volume: np.ndarray, spacing: Sequence[float]) -> tuple[float, float, float]:
    """Validate a ``(Z, Y, X)`` HU array and its spacing; return the spacing as floats."""
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3D (Z, Y, X), got shape {volume.shape}")
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing must be three positive mm values (z, y, x), got {tuple(spacing)}")
    return tuple(float(s) for s in spacing)  # type: ignore[return-value]


def reduction_factors(spacing: Sequence[float], target_mm: Sequence[float]) -> tuple[int, int, int]:
    """Integer block sizes so that ``spacing * factor`` comes closest to ``target_mm``."""
    return tuple(max(1, round(t / s)) for s, t in zip(spacing, target_mm))  # type: ignore[return-value]


def block_mean(volume: np.ndarray, factors: Sequence[int]) -> np.ndarray:
    """Mean over ``factors`` blocks (edge-padded), as float32: a cheap anti-aliased reduction."""
    fz, fy, fx = factors
    if (fz, fy, fx) == (1, 1, 1):
        return volume.astype(np.float32)
    pad = [(0, (-n) % f) for n, f in zip(volume.shape, factors)]
    v = np.pad(volume, pad, mode="edge") if any(p[1] for p in pad) else volume
    z, y, x = (n // f for n, f in zip(v.shape, factors))
    out = np.zeros((z, y, x), dtype=np.float32)
    # Accumulate block members one offset at a time: bounded memory, no float64 temporaries.
    for a in range(fz):
        for b in range(fy):
            for c in range(fx):
                out += v[a::fz, b::fy, c::fx]
    out /= fz * fy * fx
    return out


def block_expand(mask: np.ndarray, factors: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour inverse of :func:`block_mean`, cropped to ``shape``."""
    out = mask
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    return np.ascontiguousarray(out[: shape[0], : shape[1], : shape[2]])


def fill_slices(mask: np.ndarray, *, max_hole_px: int | None = None) -> np.ndarray:
    """Fill holes in every axial slice (2D, background connected through the slice edges).

    With ``max_hole_px``, only holes of at most that many pixels are filled.
    """
    out = np.empty_like(mask, dtype=bool)
    for k in range(mask.shape[0]):
        if not mask[k].any():
            out[k] = False
            continue
        filled = fill_voids.fill(mask[k])
        if max_hole_px is not None:
            holes = filled & ~mask[k]
            if holes.any():
                # dust(invert=True) drops the components of threshold pixels or more.
                small = cc3d.dust(holes, threshold=int(max_hole_px) + 1, connectivity=4, invert=True) > 0
                filled = mask[k] | small
        out[k] = filled
    return out


def fill_3d_and_slices(mask: np.ndarray, *, max_hole_px: int | None = None) -> np.ndarray:
    """Fill enclosed cavities in 3D, then remaining (small) holes slice by slice."""
    return fill_slices(fill_voids.fill(mask), max_hole_px=max_hole_px)


def largest_component(mask: np.ndarray, *, connectivity: int = 6) -> np.ndarray:
    """The largest connected component of ``mask`` (empty when ``mask`` is empty)."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    return cc3d.largest_k(mask, k=1, connectivity=connectivity) > 0


def remove_small(mask: np.ndarray, min_voxels: int, *, connectivity: int = 26) -> np.ndarray:
    """Drop connected components smaller than ``min_voxels`` (what ``cc3d.dust`` does, at a
    third of its time on a lesion box: no per-component statistics, no ``np.isin``)."""
    if min_voxels <= 1 or not mask.any():
        return mask.astype(bool)
    mask = np.asarray(mask, dtype=bool)
    labels, n = cc3d.connected_components(mask, connectivity=connectivity, return_N=True, binary_image=True)
    keep = component_sizes(labels, mask, n) >= min_voxels
    keep[0] = False
    return keep[labels]


def component_sizes(labels: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Voxels per label ``0..n`` of a component labelling of ``mask`` (label 0 not counted).

    Counted over the mask's voxels only: ``np.bincount`` first copies its whole input to int64,
    which for a lesion box is 460 MB of fresh memory and over a second on a virtual machine.
    """
    return np.bincount(labels[mask], minlength=n + 1)


def bbox(mask: np.ndarray, *, margin: Sequence[int] | None = None) -> tuple[slice, ...] | None:
    """Bounding box of ``mask`` (any number of axes) as slices, grown by ``margin`` voxels per
    axis (default none) and clipped to the array; ``None`` if ``mask`` is empty.

    The one bounding-box helper of pneumolens (findings, lung completion, lesions, masks).
    """
    margin = (0,) * mask.ndim if margin is None else tuple(margin)
    if len(margin) != mask.ndim:
        raise ValueError(f"margin needs one value per axis ({mask.ndim}), got {margin}")
    out = []
    for axis, m in enumerate(margin):
        proj = mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis))
        idx = np.flatnonzero(proj)
        if idx.size == 0:
            return None
        out.append(slice(max(int(idx[0]) - m, 0), min(int(idx[-1]) + 1 + m, mask.shape[axis])))
    return tuple(out)
