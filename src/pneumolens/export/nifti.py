"""NIfTI masks aligned with the original scan in patient space."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# LPS (DICOM) to RAS (NIfTI) flips the first two patient axes.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Canonical arrays are indexed (k, j, i) = (z, y, x); NIfTI data is indexed (i, j, k).
_IJK_TO_KJI = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)


def canonical_to_nifti_affine(affine: np.ndarray) -> np.ndarray:
    """NIfTI (RAS, index i,j,k) affine of data stored as ``canonical.transpose(2, 1, 0)``."""
    return _LPS_TO_RAS @ affine @ _IJK_TO_KJI


def write_mask_nifti(mask: np.ndarray, affine: np.ndarray, path: str | Path) -> Path:
    """Write a canonical ``(Z, Y, X)`` label array as NIfTI in patient space.

    ``path`` ending in ``.nii.gz`` is gzip-compressed at nibabel's fast level 1; ``.nii`` is
    written uncompressed (fastest, largest).

    ``affine`` is :attr:`pneumolens.io.CTScan.affine`; any viewer that overlays the mask on the
    original DICOM series places every voxel where it was acquired.
    """
    import nibabel as nib

    canonical = np.asarray(mask)
    if canonical.dtype == bool:
        canonical = canonical.astype(np.uint8)
    # A transposed *view*: NIfTI stores (i, j, k) in Fortran order, which is exactly the C order
    # of the canonical (k, j, i) array, so nibabel streams the buffer without reordering it
    # (a contiguous copy here made writing 5-10x slower).
    data = np.ascontiguousarray(canonical).transpose(2, 1, 0)
    image = nib.Nifti1Image(data, canonical_to_nifti_affine(affine))
    image.header.set_xyzt_units("mm")
    image.set_qform(image.affine, code=1)  # scanner coordinates
    image.set_sform(image.affine, code=1)
    path = Path(path)
    nib.save(image, str(path))
    return path
