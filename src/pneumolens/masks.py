"""Mask result objects shared by the anatomy and lesion stages."""

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

        # Nearest lung label, computed in the box around the added voxels (plus a margin).
        zs, ys, xs = (np.nonzero(add.any(axis=axes))[0] for axes in ((1, 2), (0, 2), (0, 1)))
        box = tuple(slice(max(0, int(a[0]) - 8), int(a[-1]) + 9) for a in (zs, ys, xs))
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
    ``lung_additions``: bool mask of voxels the lesion step found to be lung that the lung mask
    had lost (dense consolidation against the chest wall), or ``None``; the pipeline adds them
    to the lungs (:meth:`LungMasks.with_added`).
    """

    labels: np.ndarray
    probability: np.ndarray
    method: str
    lung_additions: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.labels.dtype != np.uint8 or self.labels.ndim != 3:
            raise ValueError(f"LesionMasks.labels must be 3D uint8, got {self.labels.dtype} {self.labels.shape}")
        if self.probability.shape != self.labels.shape:
            raise ValueError("LesionMasks.probability must have the shape of labels")
        if self.lung_additions is not None and self.lung_additions.shape != self.labels.shape:
            raise ValueError("LesionMasks.lung_additions must have the shape of labels")

    @property
    def any(self) -> np.ndarray:
        return self.labels > 0
