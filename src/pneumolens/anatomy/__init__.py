"""Anatomy: lungs (left/right, airways out, dense lesions kept in)."""

from pneumolens.anatomy.lungs import segment_lungs

__all__ = ["segment_lungs"]
