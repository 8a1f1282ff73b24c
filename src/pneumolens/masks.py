"""Mask result objects shared by the anatomy and lesion stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIGHT_LUNG = 1
LEFT_LUNG = 2
GGO = 1
CONSOLIDATION = 2


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
