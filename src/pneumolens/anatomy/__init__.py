"""Anatomy: lungs (left/right, airways out, dense lesions kept in) and lung completion."""

from pneumolens.anatomy.completion import complete_lungs
from pneumolens.anatomy.lungs import segment_lungs

__all__ = ["complete_lungs", "segment_lungs"]
