"""Single-file volumes (NIfTI, NRRD, MetaImage) read with SimpleITK and reoriented to canonical."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from pneumolens import quality
from pneumolens.errors import InputError
from pneumolens.io.dicom_read import build_scan, to_hu
from pneumolens.io.orientation import (
    affine_from_axes,
    canonical_reorientation,
    reoriented_affine,
)
from pneumolens.io.scan import CTScan, ScanInfo

#: File name endings of the volume formats, longest first, and the format each names.
VOLUME_SUFFIXES = (
    (".nii.gz", "nifti"),
    (".nii", "nifti"),
    (".nrrd", "nrrd"),
    (".nhdr", "nrrd"),
    (".mha", "mha"),
    (".mhd", "mha"),
)


def volume_format(path: Path) -> str | None:
    """``"nifti"``, ``"nrrd"``, ``"mha"`` or ``None`` from the file name."""
    name = path.name.lower()
    for suffix, fmt in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return fmt
    return None


def nifti_header(path: Path) -> tuple[tuple[int, ...], tuple[float, ...], int, int]:
    """``(dim, pixdim, qform_code, sform_code)`` as stored in a NIfTI-1/2 header.

    Read raw because nibabel and ITK both silently replace a zero pixdim with 1 mm.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read(540)
    for endian in "<>":
        if len(raw) >= 348 and struct.unpack(endian + "i", raw[:4])[0] == 348:
            dim = struct.unpack(endian + "8h", raw[40:56])
            pixdim = struct.unpack(endian + "8f", raw[76:108])
            qform, sform = struct.unpack(endian + "2h", raw[252:256])
            break
        if len(raw) >= 540 and struct.unpack(endian + "i", raw[:4])[0] == 540:
            dim = struct.unpack(endian + "8q", raw[16:80])
            pixdim = struct.unpack(endian + "8d", raw[104:168])
            qform, sform = struct.unpack(endian + "2i", raw[344:352])
            break
    else:
        raise InputError(
            "the file is not a valid NIfTI image (bad header size)",
            where=path,
            todo="check the file is a complete .nii/.nii.gz (re-export it)",
        )
    n = max(0, min(int(dim[0]), 7))
    return tuple(int(d) for d in dim[1 : n + 1]), tuple(float(p) for p in pixdim[1 : n + 1]), int(qform), int(sform)


def _check_nifti_values(path: Path) -> None:
    """Refuse NaN/infinite voxels of a floating-point NIfTI, read with nibabel: ITK's NIfTI reader
    silently turns NaN into 0 (which would be read as water, 0 HU)."""
    import nibabel as nib

    image = nib.load(str(path))
    if image.get_data_dtype().kind == "f":
        quality.check_finite(np.asarray(image.dataobj), where=str(path))


def _check_nifti(path: Path) -> list[str]:
    shape, pixdim, qform, sform = nifti_header(path)
    # Trailing singleton dimensions (x, y, z, 1) are a 3D volume.
    while len(shape) > 3 and shape[-1] == 1:
        shape, pixdim = shape[:-1], pixdim[:-1]
    quality.check_volume_dimensions(shape, where=str(path))
    quality.check_spacing(pixdim, where=str(path))
    _check_nifti_values(path)
    if qform == 0 and sform == 0:
        return ["the NIfTI has no orientation (qform and sform codes 0); the axes were assumed to be RAS"]
    return []


def read_volume(path: Path, *, fmt: str) -> CTScan:
    """Read a NIfTI/NRRD/MHA file as a canonical :class:`CTScan` (values taken as HU)."""
    import SimpleITK as sitk

    warnings = _check_nifti(path) if fmt == "nifti" else []
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(
            f"SimpleITK could not read the {fmt.upper()} file ({str(exc).strip().splitlines()[-1][:200]})",
            where=path,
            todo="check the file is complete and, for .nhdr/.mhd, that its data file sits beside it",
        ) from None
    size = image.GetSize()
    while len(size) > 3 and size[-1] == 1:  # drop trailing singleton dimensions
        image = image[(slice(None),) * 3 + (0,) * (len(size) - 3)]
        size = image.GetSize()
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"the image has {image.GetNumberOfComponentsPerPixel()} components per voxel (colour or vector)",
            where=path,
            todo="give a single-channel CT volume in HU",
        )
    quality.check_volume_dimensions(size[::-1], where=str(path))
    spacing_xyz = image.GetSpacing()
    quality.check_spacing(spacing_xyz, where=str(path))

    array = sitk.GetArrayViewFromImage(image)  # (k, j, i): i fastest
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    # Array axis a = (k, j, i) runs along ITK index axis 2 - a.
    source_affine = affine_from_axes(
        np.asarray(image.GetOrigin(), dtype=float),
        np.stack([direction[:, 2], direction[:, 1], direction[:, 0]]),
        (spacing_xyz[2], spacing_xyz[1], spacing_xyz[0]),
    )
    quality.check_finite(np.asarray(array), where=str(path))
    hu = to_hu(np.asarray(array), 1.0, 0.0)  # volumes hold HU already: round and clip only
    reorientation = canonical_reorientation(source_affine)
    volume = np.ascontiguousarray(reorientation.apply(hu))
    affine = reoriented_affine(source_affine, reorientation, hu.shape)
    spacing = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
    z_positions = tuple(float((affine @ np.array([k, 0, 0, 1.0]))[2]) for k in range(volume.shape[0]))
    info = ScanInfo(
        path=str(path),
        format=fmt,
        modality=None,
        z_positions_mm=z_positions,
        source_files=(None,) * volume.shape[0],
    )
    return build_scan(volume, spacing, affine, info, reorientation, source_affine, warnings, where=str(path))
