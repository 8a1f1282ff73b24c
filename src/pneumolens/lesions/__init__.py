"""Lesion segmentation inside the lungs: ground-glass opacity (1) and consolidation (2).

Two methods share one entry point, :func:`segment_lesions`:

* ``"density"``: HU bands after vessel suppression (:mod:`pneumolens.lesions.density`), no model;
* ``"model"``: the shipped learned model (:mod:`pneumolens.lesions.model`, needs onnxruntime),
  imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pneumolens.lesions.density import segment_lesions_density
from pneumolens.masks import LesionMasks, LungMasks

METHODS = ("density", "model")


def segment_lesions(
    volume: np.ndarray,
    spacing: Sequence[float],
    lungs: LungMasks,
    *,
    method: str = "density",
    weights: str | Path | None = None,
    **options: Any,
) -> LesionMasks:
    """Segment lesions with the chosen method.

    Parameters
    ----------
    volume
        HU array ``(Z, Y, X)``, canonical layout.
    spacing
        Voxel size ``(z, y, x)`` in mm.
    lungs
        Lung masks on the same grid.
    method
        ``"density"`` or ``"model"``.
    weights
        Model weights (path) for ``method="model"``; ``None`` takes the shipped model. Not
        accepted by the density method.
    **options
        Keyword options of the chosen method's function.

    Returns
    -------
    LesionMasks
    """
    if method == "density":
        if weights is not None:
            raise ValueError("weights are only used by method='model', not by method='density'")
        return segment_lesions_density(volume, spacing, lungs, **options)
    if method == "model":
        # Imported here: the model method needs onnxruntime, the density method does not.
        from pneumolens.lesions.model import segment_lesions_model

        return segment_lesions_model(volume, spacing, lungs, weights=weights, **options)
    raise ValueError(f"unknown lesion method {method!r}; choose one of {METHODS}")


__all__ = ["METHODS", "segment_lesions", "segment_lesions_density"]
