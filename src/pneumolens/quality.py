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


def missing_geometry(keywords: Sequence[str], *, where: str, files: Sequence[str] = (), n_images: int = 0) -> InputError:
    """Images without (or with unreadable) attributes that place them in space.

    ``files`` are the images concerned when only some lack them (a garbled value in one file):
    the message then names them.
    """
    detail = ""
    if files and len(files) < n_images:
        detail = f" in {len(files)} of {n_images} image(s) ({_files(list(files))}: missing or unreadable)"
    return InputError(
        f"the images lack {', '.join(keywords)}{detail}, so their position in the patient is unknown",
        where=where,
        todo="export the original CT series from the scanner or PACS (secondary captures and "
        "anonymisers that strip geometry cannot be analysed; a garbled value means a corrupt file)",
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


# --- per-file and per-slice consistency (DICOM) ----------------------------------------------

#: A DICOM image file may exceed its uncompressed pixel data by this factor (plus the allowance
#: below) before it is refused: headers with private data are rarely above a few hundred kB.
MAX_FILE_SIZE_FACTOR = 2.0
MAX_HEADER_BYTES = 16 * 1024**2
#: Pixel spacings that differ by less than this fraction of a pixel across the image are equal
#: (DS rounding); anything more would misplace the far edge of the slice.
SPACING_TOLERANCE_PIXELS = 0.1
#: RescaleSlope must lie in this range (CT stores HU at 1, sometimes 0.5-2 or 1/16-16).
SLOPE_RANGE = (1e-3, 1e3)
#: |RescaleIntercept| above this cannot map 16-bit stored values to HU.
MAX_ABS_INTERCEPT = 65536.0
#: A slice differs from both neighbours by more than this factor of the median neighbour
#: difference (and by more than its skip-one difference times SKIP_FACTOR): a corrupt slice.
OUTLIER_FACTOR = 2.5
SKIP_FACTOR = 1.5
#: Neighbour differences below this (HU, mean absolute) never flag a slice: noise-level changes.
OUTLIER_FLOOR_HU = 30.0


def _files(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_file_size(file_size: int, expected_pixel_bytes: int, *, name: str) -> None:
    """Refuse a DICOM image far bigger than its Rows x Columns x frames x bits need.

    Checked on the header alone, before any pixel data is read: a file padded to gigabytes
    (a zip bomb member, a broken export) is refused in milliseconds.
    """
    limit = MAX_FILE_SIZE_FACTOR * expected_pixel_bytes + MAX_HEADER_BYTES
    if expected_pixel_bytes > 0 and file_size > limit:
        raise InputError(
            f"the file is {file_size / 1024**2:.1f} MiB but its header describes "
            f"{expected_pixel_bytes / 1024**2:.2f} MiB of pixel data (Rows x Columns x frames x "
            f"BitsAllocated): it is not a valid CT image",
            where=name,
            todo="remove the file or re-export the series from the scanner or PACS",
        )


def check_rescale(names: Sequence[str], slopes: Sequence[float | None], intercepts: Sequence[float | None],
                  *, where: str) -> None:
    """Every slice needs a sane RescaleSlope and RescaleIntercept (DICOM PS3.3 C.8.2.1, Type 1).

    A missing value is never replaced by a default (an intercept read as 0 instead of -1024
    shifts every HU by 1024 and turns lung into soft tissue).
    """
    for keyword, values in (("RescaleIntercept", intercepts), ("RescaleSlope", slopes)):
        missing = [n for n, v in zip(names, values) if v is None]
        if missing:
            raise InputError(
                f"{keyword} is missing or unreadable in {len(missing)} of {len(names)} image(s) "
                f"({_files(missing)}); without it the stored values cannot be converted to HU",
                where=where,
                todo="re-export the series from the scanner or PACS with its rescale attributes "
                "(an anonymiser or converter may have dropped them)",
            )
    bad_slope = [(n, v) for n, v in zip(names, slopes) if not SLOPE_RANGE[0] <= v <= SLOPE_RANGE[1]]
    if bad_slope:
        raise InputError(
            f"RescaleSlope is {bad_slope[0][1]:g} in {len(bad_slope)} image(s) ({_files([n for n, _ in bad_slope])}); "
            f"a CT slope lies between {SLOPE_RANGE[0]:g} and {SLOPE_RANGE[1]:g} (usually 1)",
            where=where,
            todo="the header is corrupt: re-export the series from the scanner or PACS",
        )
    bad_intercept = [(n, v) for n, v in zip(names, intercepts) if abs(v) > MAX_ABS_INTERCEPT]
    if bad_intercept:
        raise InputError(
            f"RescaleIntercept is {bad_intercept[0][1]:g} in {len(bad_intercept)} image(s) "
            f"({_files([n for n, _ in bad_intercept])}); a CT intercept is usually -1024, -1000 or 0",
            where=where,
            todo="the header is corrupt: re-export the series from the scanner or PACS",
        )


def _minority(names: Sequence[str], keys: Sequence[object]) -> tuple[object, list[tuple[object, list[str]]]]:
    """The most common key and, for every other key, the files that have it."""
    groups: dict[object, list[str]] = {}
    for name, key in zip(names, keys):
        groups.setdefault(key, []).append(name)
    common = max(groups, key=lambda k: len(groups[k]))
    return common, [(k, v) for k, v in groups.items() if k != common]


def check_image_size(names: Sequence[str], sizes: Sequence[tuple[int, int]], *, where: str) -> None:
    """All slices of a stack must have the same Rows x Columns."""
    common, others = _minority(names, sizes)
    if others:
        odd = [n for _, files in others for n in files]
        size, files = others[0]
        raise InputError(
            f"the slices differ in size: {len(odd)} of {len(names)} image(s) are not "
            f"{common[0]}x{common[1]} pixels, e.g. {_files(files)} with {size[0]}x{size[1]}",
            where=where,
            todo="the folder mixes images of different series under one series UID, or a file is "
            "corrupt: export the series on its own from the scanner or PACS",
        )


def check_orientation_consistency(
    names: Sequence[str], orientations: Sequence[Sequence[float]], *, where: str, tolerance: float = 1e-3
) -> None:
    """All slices of a stack must share ImageOrientationPatient (to ``tolerance`` per cosine)."""
    reference = np.median(np.asarray(orientations, dtype=float), axis=0)
    deviation = np.abs(np.asarray(orientations, dtype=float) - reference).max(axis=1)
    odd = [n for n, d in zip(names, deviation) if d > tolerance]
    if odd:
        worst = names[int(np.argmax(deviation))]
        values = "\\".join(f"{v:g}" for v in orientations[int(np.argmax(deviation))])
        raise InputError(
            f"ImageOrientationPatient differs between slices: {len(odd)} of {len(names)} image(s) "
            f"({_files(odd)}) are not oriented like the rest, e.g. {worst} has {values}",
            where=where,
            todo="a slice header is corrupt or two series are mixed: re-export the series from the "
            "scanner or PACS",
        )


def check_pixel_spacing(
    names: Sequence[str], spacings: Sequence[tuple[float, float]], sizes: Sequence[tuple[int, int]], *, where: str
) -> tuple[float, float]:
    """All slices must share PixelSpacing; returns it.

    Spacings that differ by less than :data:`SPACING_TOLERANCE_PIXELS` of a pixel over the
    whole image are the same (decimal-string rounding). Anything more is refused: the reader
    cannot resample a slice exactly onto another grid, and using one slice's spacing for all
    changes every volume (one slice at another spacing made P002's lungs 8677 mL instead of
    3875 mL).
    """
    array = np.asarray(spacings, dtype=float)
    common, _ = _minority(names, [tuple(np.round(row, 4)) for row in array])
    reference = array[[tuple(np.round(row, 4)) for row in array].index(common)]
    extent = np.asarray(sizes, dtype=float)  # (rows, columns): spacing[0] is between rows
    shift_pixels = np.abs(array - reference) * extent / reference
    odd = [i for i, s in enumerate(shift_pixels.max(axis=1)) if s > SPACING_TOLERANCE_PIXELS]
    if odd:
        shown = [names[i] for i in odd]
        example = array[odd[0]]
        raise InputError(
            f"PixelSpacing differs between slices: {len(odd)} of {len(names)} image(s) ({_files(shown)}) "
            f"have {example[0]:g}x{example[1]:g} mm where the others have {reference[0]:g}x{reference[1]:g} mm; "
            "one spacing for all would give wrong volumes",
            where=where,
            todo="re-export the series from the scanner or PACS (a header is corrupt, or images of "
            "two reconstructions are mixed under one series UID)",
        )
    return float(reference[0]), float(reference[1])


def slice_outliers(volume: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Slices whose image differs from both neighbours far more than neighbours differ elsewhere.

    A corrupt slice (damaged compressed pixel data still decode to an image of the right size)
    stands out: the mean absolute HU difference to each neighbour is many times the median
    difference between the other neighbouring slices of the series, while its two neighbours
    agree with each other. Real series stay below 1.8 times the median (P002, the Siemens
    20-slice series, lung1/lung2, the CIP CT); damaged JPEG-Lossless slices of P002 measured
    2.9-46 times.

    Returns
    -------
    indices, differences
        The suspect slices (ascending) and the mean absolute difference between neighbours
        (length ``n - 1``).
    """
    n = volume.shape[0]
    step = max(1, min(volume.shape[1:]) // 128)
    sample = volume[:, ::step, ::step].astype(np.float32)
    adjacent = np.abs(np.diff(sample, axis=0)).mean(axis=(1, 2))
    if n < 3:
        return [], adjacent
    suspects = []
    for k in range(n):
        touching = [i for i in (k - 1, k) if 0 <= i < n - 1]
        others = np.delete(adjacent, touching)
        near = float(min(adjacent[i] for i in touching))
        if 0 < k < n - 1:
            skip = float(np.abs(sample[k + 1] - sample[k - 1]).mean())
            reference = float(np.median(others)) if others.size else skip
            if near <= SKIP_FACTOR * skip:
                continue  # the neighbours differ as much from each other: anatomy, not this slice
        else:
            if not others.size:
                continue
            reference = float(np.median(others))
        if near > max(OUTLIER_FACTOR * reference, reference + OUTLIER_FLOOR_HU):
            suspects.append(k)
    return suspects, adjacent


def check_slice_intensities(volume: np.ndarray, names: Sequence[str], *, where: str) -> None:
    """Refuse a stack with a slice that differs from its neighbours like a corrupt image.

    ``volume`` is the HU stack in slice order and ``names`` the file of each slice.
    """
    suspects, adjacent = slice_outliers(volume)
    if suspects:
        k = suspects[0]
        near = max(adjacent[k - 1] if k > 0 else 0.0, adjacent[k] if k < len(adjacent) else 0.0)
        others = np.delete(adjacent, [i for i in (k - 1, k) if 0 <= i < len(adjacent)])
        typical = float(np.median(others)) if others.size else float("nan")
        raise InputError(
            f"the image of {len(suspects)} slice(s) ({_files([names[i] for i in suspects])}) differs from its "
            f"neighbours far more than neighbouring slices differ elsewhere (mean |HU difference| {near:.0f} vs a "
            f"median of {typical:.0f}): its pixel data are probably corrupt",
            where=where,
            todo="check the file (re-export or re-transfer the series); a damaged slice would change "
            "the lung and lesion masks of its neighbours too",
        )


def check_finite(array: np.ndarray, *, where: str) -> None:
    """Refuse NaN or infinite voxels (they would silently become 0 HU, i.e. water)."""
    if array.dtype.kind != "f":
        return
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if count:
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{count} voxel(s) are NaN or infinite (the first at array index {first}); "
            "they have no HU value and would be read as water",
            where=where,
            todo="fill or crop the undefined region before saving, or give the original DICOM series",
        )


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
