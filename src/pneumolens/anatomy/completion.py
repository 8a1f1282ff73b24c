"""Lung completion: dense lesion the lung mask lost is given back to the lungs.

A threshold-based lung mask (:func:`pneumolens.anatomy.segment_lungs`) cuts away consolidation
that lies against the chest wall: it is as dense as soft tissue. The lesion model, which sees
the whole lung box, still finds it. This step, run by ``pipeline.analyze`` after the lesion
evidence and before everything that needs final lungs (lesion masks, lobes, findings), adds the
3D components of lesion evidence outside the lungs that

* share a face with the lungs over at least :data:`MIN_CONTACT_VOXELS` voxels (consolidation the
  mask cut off shares a whole face; a stomach wall beside the lung base touches it in a few),
* hold at least ``min_added_ml``, and
* have a mean of at least ``min_added_hu`` HU (consolidation, not aerated tissue),

each added voxel taking the label of the nearest lung (:meth:`LungMasks.with_added`).
Measured in ``docs/methods.md`` (lung completion) and ``docs/models/lesion_unet2d.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from pneumolens.grid import bbox
from pneumolens.masks import LungMasks

logger = logging.getLogger(__name__)

#: Voxels of a component outside the lungs that must border the lung mask before the component
#: is taken as lung the mask lost.
MIN_CONTACT_VOXELS = 200


def complete_lungs(
    lungs: LungMasks,
    volume: np.ndarray,
    spacing: Sequence[float],
    *,
    dense_lesion: np.ndarray | None,
    min_added_ml: float = 1.0,
    min_added_hu: float = -300.0,
) -> LungMasks:
    """``lungs`` plus the lesion components outside them that are lung the mask lost.

    Parameters
    ----------
    lungs
        Lung masks ``(Z, Y, X)``.
    volume
        HU array on the same grid.
    spacing
        Voxel size ``(z, y, x)`` in mm.
    dense_lesion
        Bool ``(Z, Y, X)``: lesion evidence outside the lungs
        (:meth:`pneumolens.masks.LesionEvidence.outside`); ``None`` (a method without evidence
        outside the lungs, e.g. density) returns ``lungs`` unchanged.
    min_added_ml, min_added_hu
        Smallest volume (mL) and mean HU of a component that is added.

    Returns
    -------
    LungMasks
        ``lungs`` itself when nothing is added; otherwise new masks, airways unchanged.
    """
    if dense_lesion is None:
        return lungs
    if dense_lesion.shape != lungs.labels.shape or volume.shape != lungs.labels.shape:
        raise ValueError(f"lungs {lungs.labels.shape}, volume {volume.shape} and dense_lesion {dense_lesion.shape} differ")
    outside = dense_lesion & (lungs.labels == 0)
    box = bbox(outside | (lungs.labels > 0))
    if box is None or not outside.any():
        return lungs
    added = lost_dense_lung(outside[box], lungs.labels[box] > 0, volume[box], spacing,
                            min_ml=min_added_ml, min_hu=min_added_hu)
    if added is None:
        return lungs
    full = np.zeros(lungs.labels.shape, dtype=bool)
    full[box] = added
    return lungs.with_added(full)


def lost_dense_lung(
    outside: np.ndarray, lung: np.ndarray, hu: np.ndarray, spacing: Sequence[float], *, min_ml: float, min_hu: float
) -> np.ndarray | None:
    """Components of ``outside`` (lesion outside ``lung``) that touch ``lung`` over at least
    :data:`MIN_CONTACT_VOXELS` face-neighbours, hold ``min_ml`` and average ``min_hu``; ``None`` if none."""
    import cc3d

    if not outside.any():
        return None
    comps = cc3d.connected_components(outside, connectivity=26)
    # Contact = component voxels with a face-neighbour in the lung. (Shifted views instead of a
    # binary dilation: several times faster on a whole lung box.)
    beside = np.zeros(lung.shape, dtype=bool)
    for axis in range(3):
        n = lung.shape[axis]
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        beside[tuple(lo)] |= lung[tuple(hi)]
        beside[tuple(hi)] |= lung[tuple(lo)]
    labels_out, hu_out = comps[outside], hu[outside].astype(np.float64)
    n_comps = int(comps.max()) + 1
    contact = np.bincount(comps[outside & beside], minlength=n_comps)
    sizes = np.bincount(labels_out, minlength=n_comps)
    mean_hu = np.bincount(labels_out, weights=hu_out, minlength=n_comps) / np.maximum(sizes, 1)
    min_voxels = min_ml * 1000.0 / float(np.prod(spacing))
    keep = [
        c for c in range(1, sizes.size)
        if contact[c] >= MIN_CONTACT_VOXELS and sizes[c] >= min_voxels and mean_hu[c] >= min_hu
    ]
    if logger.isEnabledFor(logging.DEBUG):
        stats = [(int(sizes[c]), int(contact[c]), round(float(mean_hu[c]))) for c in range(1, sizes.size)]
        logger.debug("lost-lung candidates (size, contact, mean HU): %s", stats)
    return np.isin(comps, keep) if keep else None
