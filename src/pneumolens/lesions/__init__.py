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

from pneumolens.config import DEFAULT_METHOD, METHODS
from pneumolens.lesions.density import segment_lesions_density
from pneumolens.masks import LesionEvidence, LesionMasks, LungMasks


def predict_lesions(
    volume: np.ndarray,
    spacing: Sequence[float],
    lungs: LungMasks,
    *,
    method: str = DEFAULT_METHOD,
    weights: str | Path | None = None,
    **options: Any,
) -> LesionEvidence:
    """Lesion evidence of the chosen method, before the lungs are final.

    Parameters
    ----------
    volume
        HU array ``(Z, Y, X)``, canonical layout.
    spacing
        Voxel size ``(z, y, x)`` in mm.
    lungs
        Lung masks on the same grid.
    method
        One of :data:`pneumolens.config.METHODS`.
    weights
        Model weights (path or shipped name) for ``method="model"``; ``None`` takes the shipped
        model. Not accepted by the density method.
    **options
        Keyword options of the chosen method's function.

    Returns
    -------
    LesionEvidence
        For the model, evidence over the whole lung box (lung completion may add some of it to
        the lungs); for the density method, its lesions inside ``lungs`` (nothing outside).
    """
    if method == "density":
        if weights is not None:
            raise ValueError("weights are only used by method='model', not by method='density'")
        masks = segment_lesions_density(volume, spacing, lungs, **options)
        return LesionEvidence(masks.labels, masks.probability, masks.method)
    if method == "model":
        # Imported here: the model method needs onnxruntime, the density method does not.
        from pneumolens.lesions.model import predict_lesions_model

        return predict_lesions_model(volume, spacing, lungs, weights=weights, **options)
    raise ValueError(f"unknown lesion method {method!r}; choose one of {METHODS}")


def segment_lesions(volume: np.ndarray, spacing: Sequence[float], lungs: LungMasks, **options: Any) -> LesionMasks:
    """Lesions of the chosen method inside ``lungs``, without lung completion
    (:func:`predict_lesions` for the parameters; ``pipeline.analyze`` for the whole path)."""
    evidence = predict_lesions(volume, spacing, lungs, **options)
    return evidence.within(lungs, tuple(float(s) for s in spacing))


__all__ = ["METHODS", "predict_lesions", "segment_lesions", "segment_lesions_density"]
