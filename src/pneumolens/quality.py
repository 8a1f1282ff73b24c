"""Input checks: reject what cannot be analysed with a clear reason, warn about the rest.

Errors are :class:`~pneumolens.errors.InputError` saying what is wrong (with the value found),
where (file, folder or series: never a patient identifier) and what to do. Warnings are short
sentences collected into :attr:`pneumolens.io.scan.ScanInfo.warnings`. Every message is listed
in ``docs/input.md``.

The checks are plain functions so that each reader calls the ones that apply to it; the
"no lungs found" check (head or abdomen-only CT) belongs to the lung stage, which raises
:class:`InputError` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pneumolens.errors import InputError

#: A gap between neighbouring slices larger than this times the median spacing is missing slices.
GAP_FACTOR = 1.5
#: Positions closer than this (mm) along the slice normal are the same position.
SAME_POSITION_MM = 0.01
#: Slice direction may deviate this much (degrees) from the image-plane normal before it is tilt.
MAX_TILT_DEG = 0.5
#: Slices thicker than this (mm) get a warning: small lesions and ground glass average out.
THICK_SLICE_MM = 3.0
#: A scan covering less than this (mm, cranio-caudal) cannot hold both lungs.
MIN_CHEST_COVERAGE_MM = 60.0
#: Noise (HU standard deviation in fat) above which the scan is flagged as noisy / low dose.
NOISY_SD_HU = 35.0

_CONVERT_TODO = (
    "convert the files to an uncompressed transfer syntax, e.g. `dcmdjpeg IN OUT` (DCMTK) or "
    "`gdcmconv --raw IN OUT` (GDCM), or install the matching pydicom decoder plug-in, then run again"
)


# --- finding nothing to read ---------------------------------------------------------------


def empty_input(where: str | Path) -> InputError:
    """The folder (or zip, or list) holds no files at all."""
    return InputError(
        "the input is empty: no files found",
        where=where,
        todo="point to the folder that holds the CT's DICOM files (sub-folders are searched), "
        "a .zip of them, or a NIfTI/NRRD/MHA volume",
    )


def no_dicom(where: str | Path, n_files: int, n_unreadable: int = 0) -> InputError:
    """Files were found but none is a readable DICOM image."""
    detail = f"none of the {n_files} file(s) is a readable DICOM image"
    if n_unreadable:
        detail += f" ({n_unreadable} look like DICOM but are empty or truncated)"
    return InputError(
        detail,
        where=where,
        todo="check that this is the exported DICOM folder (not a report, viewer or DICOMDIR-only "
        "copy); re-export the series from the PACS if files were cut short",
    )


# --- series level (DICOM) ------------------------------------------------------------------


def check_modality(modality: str | None, sop_class: str, *, is_ct_sop_class: bool, where: str) -> str | None:
    """Accept CT; a missing Modality is accepted when the SOP class is a CT image.

    Returns a warning (or ``None``); raises :class:`InputError` for any other modality.
    """
    if modality == "CT":
        if sop_class and not is_ct_sop_class:
            raise InputError(
                f"the series is modality CT but SOP class {sop_class} is not a CT image "
                "(a secondary capture or derived object)",
                where=where,
                todo="export the original CT image series",
            )
        return None
    if modality is None and is_ct_sop_class:
        return "the DICOM Modality tag is missing; read as CT because the SOP class is CT Image Storage"
    found = modality or f"unknown (no Modality tag, SOP class {sop_class or 'missing'})"
    raise InputError(
        f"the series is not CT: modality {found}",
        where=where,
        todo="pneumolens analyses chest CT only; select the CT series of the study "
        "(MR, radiographs (CR/DX), reports (SR) and segmentations (SEG) cannot be analysed)",
    )


def check_not_localizer(image_type: Sequence[str], rows: int, columns: int, *, where: str) -> None:
    """Reject a scout/localizer (topogram) image set."""
    if "LOCALIZER" in image_type or min(rows, columns) <= 1:
        shown = "\\".join(image_type) or "missing"
        raise InputError(
            f"the series is a scout/localizer (ImageType {shown}, "
            f"{rows}x{columns} pixels), not a tomographic CT",
            where=where,
            todo="export the axial CT series of the study, not the topogram",
        )


def check_single_orientation(labels: Sequence[str], *, where: str) -> None:
    """Reject a series UID whose images have several orientations (two series mixed)."""
    distinct = sorted(set(labels))
    if len(distinct) > 1:
        raise InputError(
            f"two series are mixed under one SeriesInstanceUID: its images have "
            f"{len(distinct)} orientations ({', '.join(distinct)})",
            where=where,
            todo="export the axial series on its own, or fix the series UIDs of the reformats "
            "(e.g. re-export from the scanner or PACS)",
        )


def missing_geometry(keywords: Sequence[str], *, where: str) -> InputError:
    """Images without the attributes that place them in space."""
    return InputError(
        f"the images lack {', '.join(keywords)}, so their position in the patient is unknown",
        where=where,
        todo="export the original CT series from the scanner or PACS (secondary captures and "
        "anonymisers that strip geometry cannot be analysed)",
    )


def check_axial(label: str, *, where: str) -> None:
    """Require axial slices (coronal/sagittal/oblique reformats are not analysed)."""
    if label != "axial":
        raise InputError(
            f"the series is a {label} reformat, not axial slices",
            where=where,
            todo="export the axial (transverse) series of the study",
        )


def check_transfer_syntax(uid: str, *, where: str) -> None:
    """Require a transfer syntax pydicom can decode with the installed plug-ins."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    try:
        available = get_decoder(uid).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise InputError(
            f"the pixel data use transfer syntax {UID(uid).name} ({uid}), which cannot be decoded here",
            where=where,
            todo=_CONVERT_TODO,
        )


def check_gantry_tilt(
    normal: np.ndarray,
    positions: np.ndarray,
    gantry_tilt_deg: float | None,
    *,
    where: str,
) -> None:
    """Reject gantry-tilted stacks: the slices are not stacked along the image-plane normal.

    Parameters
    ----------
    normal
        Unit normal of the image planes (cross product of the ImageOrientationPatient rows).
    positions
        ``(N, 3)`` ImagePositionPatient of the slices, sorted along ``normal``.
    gantry_tilt_deg
        GantryDetectorTilt, when given.
    """
    if gantry_tilt_deg is not None and abs(gantry_tilt_deg) > 1e-3:
        raise _tilt_error(f"GantryDetectorTilt is {gantry_tilt_deg:g} degrees", where)
    if len(positions) < 2:
        return
    step = positions[-1] - positions[0]
    length = np.linalg.norm(step)
    if length == 0:
        return
    angle = np.degrees(np.arccos(np.clip(abs(float(step @ normal)) / length, 0.0, 1.0)))
    if angle > MAX_TILT_DEG:
        raise _tilt_error(f"the slices are stacked {angle:.1f} degrees off the image-plane normal", where)


def _tilt_error(what: str, where: str) -> InputError:
    return InputError(
        f"gantry tilt: {what}",
        where=where,
        todo="resample the series to an orthogonal grid first (e.g. 3D Slicer's or dcm2niix's "
        "gantry-tilt correction, then give the NIfTI), or export a non-tilted reconstruction",
    )


def check_slice_positions(distances_mm: np.ndarray, *, where: str) -> float:
    """Check slice positions along the normal; return the median slice spacing (mm).

    ``distances_mm`` are sorted and already free of duplicates (see :func:`duplicate_positions`).
    Raises for a single slice and for gaps larger than :data:`GAP_FACTOR` times the median
    spacing.
    """
    if len(distances_mm) < 2:
        raise InputError(
            "the series has a single slice; a CT volume is needed",
            where=where,
            todo="export the whole axial series (all its slices), not one image",
        )
    steps = np.diff(distances_mm)
    spacing = float(np.median(steps))
    gaps = np.flatnonzero(steps > GAP_FACTOR * spacing)
    if gaps.size:
        first = int(gaps[0])
        n_missing = int(sum(round(steps[g] / spacing) - 1 for g in gaps))
        raise InputError(
            f"slices are missing: {gaps.size} gap(s), about {n_missing} slice(s) in all; the first "
            f"is {steps[first]:.2f} mm between slices {first + 1} and {first + 2} "
            f"(at {distances_mm[first]:.2f} and {distances_mm[first + 1]:.2f} mm along the normal) "
            f"where the spacing is {spacing:.2f} mm",
            where=where,
            todo="re-export the complete series (files may have been lost in transfer)",
        )
    return spacing


def duplicate_positions(distances_mm: np.ndarray) -> list[list[int]]:
    """Groups (indices into sorted ``distances_mm``) of slices at the same position."""
    groups: list[list[int]] = []
    for i in range(1, len(distances_mm)):
        if distances_mm[i] - distances_mm[i - 1] <= SAME_POSITION_MM:
            if groups and groups[-1][-1] == i - 1:
                groups[-1].append(i)
            else:
                groups.append([i - 1, i])
    return groups


def duplicate_error(names: Sequence[str], distance_mm: float, *, where: str) -> InputError:
    """Slices at the same position with different pixels."""
    shown = ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")
    return InputError(
        f"{len(names)} slices share the position {distance_mm:.2f} mm along the normal but hold "
        f"different images ({shown})",
        where=where,
        todo="the folder mixes two reconstructions or acquisitions under one series UID; "
        "export each series to its own folder and give the one to analyse",
    )


def no_axial_series(where: str | Path, labels: Sequence[str]) -> InputError:
    """Every CT series found is a reformat (coronal, sagittal, oblique)."""
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    found = ", ".join(f"{n} {label}" for label, n in counts.items())
    return InputError(
        f"no axial CT series: only reformats were found ({found})",
        where=where,
        todo="export the axial (transverse) series of the study",
    )


def no_ct_series(where: str | Path, modalities: Sequence[str]) -> InputError:
    """No series is CT."""
    counts = {m: modalities.count(m) for m in sorted(set(modalities))}
    found = ", ".join(f"{m} ({n} series)" for m, n in counts.items())
    return InputError(
        f"no CT series found: {found}",
        where=where,
        todo="pneumolens analyses chest CT only; give the CT series of the study",
    )


# --- volume level (any format) --------------------------------------------------------------


def check_volume_dimensions(shape: Sequence[int], *, where: str) -> None:
    """Require a 3D volume with at least two slices along every axis."""
    if len(shape) != 3:
        raise InputError(
            f"the image has {len(shape)} dimension(s) (shape {tuple(shape)}); a 3D CT volume is needed",
            where=where,
            todo="give the 3D CT volume (a 2D slice or a 4D series cannot be analysed)",
        )
    if min(shape) < 2:
        raise InputError(
            f"the volume is a single slice (shape {tuple(shape)}); a CT volume is needed",
            where=where,
            todo="give the whole 3D CT volume",
        )


def check_spacing(spacing: Sequence[float], *, where: str) -> None:
    """Require positive finite voxel spacing."""
    if len(spacing) < 3 or not all(np.isfinite(s) and s > 0 for s in spacing[:3]):
        raise InputError(
            f"the voxel spacing is missing or invalid ({tuple(float(s) for s in spacing)} mm)",
            where=where,
            todo="write the file with its real voxel size (NIfTI pixdim / NRRD spacings), "
            "or give the original DICOM series",
        )


def check_hounsfield(volume: np.ndarray, *, where: str) -> None:
    """Reject values that cannot be HU: a chest CT always contains air (about -1000 HU)."""
    lowest = int(volume.min())
    if lowest > -200:
        raise InputError(
            f"the values do not look like Hounsfield units: the lowest is {lowest} "
            f"(air is about -1000 HU; range found {lowest}..{int(volume.max())})",
            where=where,
            todo="give the CT in HU (DICOM is converted with its rescale slope/intercept; "
            "for NIfTI/NRRD apply the rescale before saving)",
        )


def coverage_mm(n_slices: int, spacing_z_mm: float) -> float:
    """Cranio-caudal extent covered by ``n_slices`` slices."""
    return n_slices * spacing_z_mm


def estimate_noise_hu(volume: np.ndarray, *, max_slices: int = 9) -> float | None:
    """Image noise: median local standard deviation (HU) in fat, on a few central slices.

    Fat (-150..-50 HU) is uniform tissue present in every chest CT, so the spread of HU
    inside small windows that lie entirely in fat is image noise. Returns ``None`` when too
    little fat is found (phantoms, cropped volumes).
    """
    from scipy.ndimage import binary_erosion, uniform_filter

    n = volume.shape[0]
    index = np.unique(np.linspace(n * 0.25, n * 0.75, max_slices).astype(int).clip(0, n - 1))
    values = []
    for k in index:
        hu = volume[k].astype(np.float32)
        mean = uniform_filter(hu, 5)
        # Fat is found on the smoothed image (noise would split a voxel threshold) and eroded
        # by the window radius so that no window straddles an edge.
        inner = binary_erosion((mean > -150) & (mean < -50), iterations=3)
        if inner.sum() < 200:
            continue
        sq = uniform_filter(hu * hu, 5)
        sd = np.sqrt(np.maximum(sq - mean * mean, 0.0) * 25 / 24)  # unbiased variance of 25 values
        values.append(sd[inner])
    if not values:
        return None
    return float(np.median(np.concatenate(values)))


def scan_warnings(
    *,
    volume: np.ndarray,
    spacing: Sequence[float],
    slice_thickness_mm: float | None,
    contrast_agent: str | None,
    body_part: str | None,
    noise_hu: float | None,
) -> list[str]:
    """Warnings for a scan that can be analysed but with caveats."""
    warnings: list[str] = []
    thickness = slice_thickness_mm if slice_thickness_mm else float(spacing[0])
    if thickness > THICK_SLICE_MM:
        warnings.append(
            f"thick slices ({thickness:.1f} mm > {THICK_SLICE_MM:g} mm): small lesions and faint "
            "ground glass are partly averaged out; prefer a thin-slice (<= 1.5 mm) reconstruction"
        )
    if contrast_agent:
        warnings.append(
            f"contrast agent given ({contrast_agent}): enhancing vessels and lung parenchyma "
            "shift densities up, so lesion volumes may be overestimated"
        )
    if noise_hu is not None and noise_hu > NOISY_SD_HU:
        warnings.append(
            f"high image noise ({noise_hu:.0f} HU standard deviation in fat > {NOISY_SD_HU:g}): "
            "low-dose scan or sharp kernel; ground-glass measurements are less reliable"
        )
    covered = coverage_mm(volume.shape[0], float(spacing[0]))
    if covered < MIN_CHEST_COVERAGE_MM:
        warnings.append(
            f"the scan covers only {covered:.0f} mm cranio-caudally (< {MIN_CHEST_COVERAGE_MM:g} mm): "
            "it cannot hold whole lungs, so volumes and percentages are partial"
        )
    if body_part and body_part.strip().upper() in {"HEAD", "BRAIN", "SKULL", "HEADNECK"}:
        warnings.append(
            f"BodyPartExamined is {body_part.strip().upper()}: this may not be a chest CT"
        )
    return warnings


# --- the scan as a whole (run by pipeline.analyze on every scan, however it was made) -------

#: Relative tolerance between the affine's column lengths and the spacing.
SPACING_TOLERANCE = 1e-3


def check_affine(affine: np.ndarray, spacing: Sequence[float], *, where: str) -> None:
    """Require an affine of the canonical grid: column lengths equal to ``spacing``, orthogonal
    axes (no gantry tilt or shear), each index axis pointing along its LPS axis.

    ``affine`` maps ``(k, j, i)`` = ``(z, y, x)`` indices to LPS ``(x, y, z)`` mm
    (:attr:`pneumolens.io.CTScan.affine`): column 0 must point superior (+z), column 1 posterior
    (+y), column 2 to the patient's left (+x); small rotations of an oblique acquisition are
    accepted.
    """
    m = np.asarray(affine, dtype=float)[:3, :3]
    lengths = np.linalg.norm(m, axis=0)
    if not np.all(np.isfinite(m)) or not np.allclose(lengths, spacing, rtol=SPACING_TOLERANCE, atol=1e-6):
        raise InputError(
            f"the affine's axis lengths ({', '.join(f'{v:.4g}' for v in lengths)} mm) do not match the spacing "
            f"({', '.join(f'{float(s):.4g}' for s in spacing)} mm)",
            where=where,
            todo="build the scan with pneumolens.io.scan.scan_from_array or a reader of pneumolens.io",
        )
    unit = m / lengths
    normal = np.cross(unit[:, 1], unit[:, 2])  # image-plane normal, from the in-plane axes
    angle = np.degrees(np.arccos(np.clip(abs(float(unit[:, 0] @ normal)), 0.0, 1.0)))
    if angle > MAX_TILT_DEG or abs(float(unit[:, 1] @ unit[:, 2])) > np.sin(np.radians(MAX_TILT_DEG)):
        raise _tilt_error(f"the grid axes are {angle:.1f} degrees off orthogonal", where)
    for column, (axis, name) in enumerate(((2, "superior (+z)"), (1, "posterior (+y)"), (0, "patient left (+x)"))):
        if int(np.argmax(np.abs(unit[:, column]))) != axis or unit[axis, column] <= 0:
            raise InputError(
                f"the volume is not on the canonical grid: array axis {column} should point {name}, "
                f"its direction is {tuple(round(float(v), 3) for v in unit[:, column])}",
                where=where,
                todo="reorient the array to (Z, Y, X) = (inferior->superior, anterior->posterior, right->left) "
                "with its affine, as the readers of pneumolens.io do",
            )


def check_z_positions(z_positions_mm: Sequence[float], n_slices: int, *, where: str) -> None:
    """Require one z position per slice, strictly increasing, without gaps or duplicates."""
    z = np.asarray(z_positions_mm, dtype=float)
    if z.size != n_slices:
        raise InputError(f"{z.size} slice positions for {n_slices} slices", where=where,
                         todo="give one z position per slice (ScanInfo.z_positions_mm)")
    distances = z - z[0]
    if np.any(np.diff(distances) <= SAME_POSITION_MM):
        raise InputError(
            "the slice positions are not strictly increasing from inferior to superior (repeated or "
            "out-of-order slices)",
            where=where,
            todo="sort the slices by position and drop duplicates",
        )
    check_slice_positions(distances, where=where)


def check_scan(scan) -> list[str]:
    """Every volume-level check of :class:`~pneumolens.io.CTScan` ``scan``; returns its warnings.

    Run by ``pipeline.analyze`` on every scan, so a scan built from an array or received over
    the network is checked like one read from files: 3D with at least two slices per axis,
    valid spacing, a canonical orthogonal affine (:func:`check_affine`), slice positions without
    gaps (:func:`check_z_positions`), Hounsfield units; then :func:`scan_warnings` (the noise
    estimate of the reader is reused when there is one).

    Raises
    ------
    InputError
        What is wrong, with ``scan.info.path`` as where.
    """
    where = scan.info.path
    check_volume_dimensions(scan.volume.shape, where=where)
    check_spacing(scan.spacing, where=where)
    check_affine(scan.affine, scan.spacing, where=where)
    if scan.info.z_positions_mm:
        check_z_positions(scan.info.z_positions_mm, scan.volume.shape[0], where=where)
    check_hounsfield(scan.volume, where=where)
    noise = scan.info.noise_hu if scan.info.noise_hu is not None else estimate_noise_hu(scan.volume)
    return scan_warnings(
        volume=scan.volume,
        spacing=scan.spacing,
        slice_thickness_mm=scan.info.slice_thickness_mm,
        contrast_agent=scan.info.contrast_agent,
        body_part=scan.info.body_part,
        noise_hu=noise,
    )
