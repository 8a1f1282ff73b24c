"""Mask result objects shared by the anatomy, lesion, findings and export stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIGHT_LUNG = 1
LEFT_LUNG = 2
GGO = 1
CONSOLIDATION = 2

#: Side of each lung label; the lung regions of the findings are called ``"<side>_lung"``.
LUNG_SIDES: dict[int, str] = {RIGHT_LUNG: "right", LEFT_LUNG: "left"}
#: Name of the region made of both lungs.
WHOLE_LUNGS = "lungs"


@dataclass(frozen=True)
class LungMasks:
    """Lung segmentation on the canonical ``(Z, Y, X)`` grid.

    ``labels``: uint8, 0 outside, 1 right lung, 2 left lung (trachea and main bronchi excluded).
    ``airways``: bool mask of trachea + main bronchi that were removed (may be empty).
    """

    labels: np.ndarray
    airways: np.ndarray

    def __post_init__(self) -> None:
        if self.labels.dtype != np.uint8 or self.labels.ndim != 3:
            raise ValueError(f"LungMasks.labels must be 3D uint8, got {self.labels.dtype} {self.labels.shape}")
        if self.airways.shape != self.labels.shape:
            raise ValueError("LungMasks.airways must have the shape of labels")

    @property
    def right(self) -> np.ndarray:
        return self.labels == RIGHT_LUNG

    @property
    def left(self) -> np.ndarray:
        return self.labels == LEFT_LUNG

    @property
    def union(self) -> np.ndarray:
        return self.labels > 0

    def regions(self) -> list[tuple[str, np.ndarray]]:
        """``(name, mask)`` of each lung (``"right_lung"``, ``"left_lung"``), then both (``"lungs"``)."""
        per_lung = [(f"{side}_lung", self.labels == label) for label, side in LUNG_SIDES.items()]
        return per_lung + [(WHOLE_LUNGS, self.union)]

    def with_added(self, voxels: np.ndarray) -> LungMasks:
        """These lungs plus ``voxels`` (bool, same shape), each given the label of the nearest lung.

        Used when a later stage finds lung the lung mask lost (dense consolidation against the
        chest wall). Voxels already in a lung keep their label; airways are unchanged.
        """
        add = np.asarray(voxels, dtype=bool)
        if add.shape != self.labels.shape:
            raise ValueError(f"voxels shape {add.shape} differs from lungs shape {self.labels.shape}")
        add = add & (self.labels == 0)
        if not add.any() or not self.union.any():
            return self
        from scipy import ndimage

        from pneumolens.grid import bbox

        # Nearest lung label, computed in the box around the added voxels (plus a margin).
        box = bbox(add, margin=(8, 8, 8))
        sub = self.labels[box]
        if not sub.any():
            box, sub = tuple(slice(None) for _ in range(3)), self.labels
        _, idx = ndimage.distance_transform_edt(sub == 0, return_indices=True)
        nearest = sub[tuple(idx)]
        labels = self.labels.copy()
        region = labels[box]
        region[add[box]] = nearest[add[box]]
        return LungMasks(labels=labels, airways=self.airways)


@dataclass(frozen=True)
class LesionMasks:
    """Lesion segmentation on the canonical grid, inside the lungs only.

    ``labels``: uint8, 0 none, 1 ground-glass opacity, 2 consolidation.
    ``probability``: float32 lesion probability in [0, 1] (for the density method, a soft
    score derived from HU), same shape.
    ``method``: "density" or "model:<name>".
    """

    labels: np.ndarray
    probability: np.ndarray
    method: str

    def __post_init__(self) -> None:
        if self.labels.dtype != np.uint8 or self.labels.ndim != 3:
            raise ValueError(f"LesionMasks.labels must be 3D uint8, got {self.labels.dtype} {self.labels.shape}")
        if self.probability.shape != self.labels.shape:
            raise ValueError("LesionMasks.probability must have the shape of labels")

    @property
    def any(self) -> np.ndarray:
        return self.labels > 0


@dataclass(frozen=True)
class LesionEvidence:
    """What a lesion method found before the lungs are final (see ``pipeline.analyze``).

    The learned model looks at the whole lung box, so it also sees dense lesion just outside a
    lung mask that lost it (consolidation against the chest wall); lung completion
    (:func:`pneumolens.anatomy.complete_lungs`) decides which of it is lung, and
    :meth:`within` then gives the lesions inside the final lungs.

    ``labels``: uint8 class (1 GGO, 2 consolidation) of every voxel at or above the method's
    threshold, not restricted to the lungs; ``probability``: float32 in [0, 1], not restricted;
    ``method``: as in :class:`LesionMasks`; ``min_component_ml``: lesion components smaller than
    this (mL, 26-connected) are dropped by :meth:`within`; ``box``: the part of the grid outside
    which both arrays are 0 (``None``: all of it).
    """

    labels: np.ndarray
    probability: np.ndarray
    method: str
    min_component_ml: float = 0.0
    box: tuple[slice, slice, slice] | None = None

    def __post_init__(self) -> None:
        if self.labels.dtype != np.uint8 or self.labels.ndim != 3:
            raise ValueError(f"LesionEvidence.labels must be 3D uint8, got {self.labels.dtype} {self.labels.shape}")
        if self.probability.shape != self.labels.shape:
            raise ValueError("LesionEvidence.probability must have the shape of labels")

    def outside(self, lungs: LungMasks) -> np.ndarray:
        """Lesion voxels outside ``lungs`` (bool ``(Z, Y, X)``): candidates for lung completion."""
        return (self.labels > 0) & (lungs.labels == 0)

    def within(self, lungs: LungMasks, spacing: tuple[float, float, float], *, consume: bool = False) -> LesionMasks:
        """The lesions inside ``lungs``: labels and probability set to 0 outside them, then 3D
        components smaller than ``min_component_ml`` removed.

        ``consume=True`` writes the result into this evidence's own arrays instead of new ones
        (two volume-sized arrays less; ``pipeline.analyze`` does it): the evidence must not be
        used afterwards.
        """
        if lungs.labels.shape != self.labels.shape:
            raise ValueError(f"lungs {lungs.labels.shape} and lesion evidence {self.labels.shape} differ")
        box = self.box or (slice(None),) * 3
        if consume:  # outside the box both arrays are 0 already
            labels, probability = self.labels, self.probability
        else:
            labels = np.zeros(self.labels.shape, dtype=np.uint8)
            probability = np.zeros(self.probability.shape, dtype=np.float32)
        lung = lungs.labels[box] > 0
        labels[box] = remove_small_components(np.where(lung, self.labels[box], 0).astype(np.uint8), spacing,
                                              self.min_component_ml)
        np.multiply(self.probability[box], lung, out=probability[box])
        return LesionMasks(labels=labels, probability=probability, method=self.method)


def remove_small_components(labels: np.ndarray, spacing: tuple[float, float, float], min_ml: float) -> np.ndarray:
    """``labels`` without the 26-connected lesion components smaller than ``min_ml`` mL."""
    if min_ml <= 0 or not labels.any():
        return labels
    from pneumolens.grid import remove_small

    min_voxels = int(np.ceil(min_ml * 1000.0 / float(np.prod(spacing))))
    return np.where(remove_small(labels > 0, min_voxels, connectivity=26), labels, 0).astype(np.uint8)
