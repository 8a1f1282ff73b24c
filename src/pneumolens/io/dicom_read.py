"""The pixel pass: decode the chosen stack, convert to HU and build the canonical :class:`CTScan`."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from pneumolens import quality
from pneumolens.errors import InputError
from pneumolens.io.dicom_headers import Progress, lenient_pydicom, read_dataset
from pneumolens.io.dicom_series import Stack
from pneumolens.io.dicom_source import dicom_source, strip_pixels
from pneumolens.io.orientation import (
    affine_from_axes,
    canonical_reorientation,
    reoriented_affine,
)
from pneumolens.io.scan import CTScan, ScanInfo, SkippedItem

logger = logging.getLogger(__name__)

_INT16 = np.iinfo(np.int16)
#: Decoders to try first where pydicom's default order (GDCM first when installed) is not the
#: fastest, measured on 512x512 CT frames (2026-12-03, one core): JPEG-LS with CharLS (pyjpegls)
#: 5.8 ms, GDCM 9.5 ms, pylibjpeg 20 ms. (JPEG Lossless: GDCM 9.5 ms, pylibjpeg 19 ms; JPEG 2000:
#: GDCM 22 ms, OpenJPEG 32 ms, so the default order is kept there.)
_FASTEST_PLUGIN = {
    "1.2.840.10008.1.2.4.80": "pyjpegls",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls",  # JPEG-LS Near-Lossless
}
#: Relative spread of slice steps above which the spacing is reported as non-uniform.
_UNIFORM_TOLERANCE = 0.05


def to_hu(stored: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Stored values -> HU as ``int16``: rescale in float, round half to even, clip to int16."""
    if slope == 1.0 and float(intercept).is_integer() and stored.dtype.kind in "iu":
        hu = stored.astype(np.int32) + int(intercept)  # exact and several times faster
    else:
        hu = np.rint(stored.astype(np.float64) * slope + intercept)
    return np.clip(hu, _INT16.min, _INT16.max).astype(np.int16)


def _decode(
    stack: Stack, *, progress: Progress | None
) -> tuple[np.ndarray, np.ndarray, list[SkippedItem], list[object]]:
    """Decode every slice; returns the HU stack, a mask of decoded slices, the failures and
    each slice's header (its dataset without pixel data, ``None`` where decoding failed)."""
    first = stack.first
    volume = np.empty((len(stack.slices), first.rows, first.columns), dtype=np.int16)
    ok = np.zeros(len(stack.slices), dtype=bool)
    headers: list[object] = [None] * len(stack.slices)
    by_file: dict[object, list[int]] = {}
    for index, header in enumerate(stack.slices):
        by_file.setdefault(header.path, []).append(index)
    failures: list[SkippedItem] = []

    def decode_file(path: object, indices: list[int]) -> SkippedItem | None:
        """Decode one file into its slices of ``volume``; the failure, if any (thread-safe:
        each file writes its own slices)."""
        header = stack.slices[indices[0]]
        try:
            ds = read_dataset(path, stop_before_pixels=False)  # type: ignore[arg-type]
            if ds is None or "PixelData" not in ds:
                raise ValueError("no pixel data")
            check_pixel_data_length(ds, header)
            pixels = _pixel_array(ds)
            if pixels.ndim == 2:
                pixels = pixels[np.newaxis]
            if pixels.shape[1:] != volume.shape[1:]:
                raise ValueError(f"pixel array shape {pixels.shape} does not match Rows/Columns")
            for index in indices:
                s = stack.slices[index]
                volume[index] = to_hu(pixels[s.frame or 0], s.slope, s.intercept)
                ok[index] = True
            strip_pixels(ds)
            for index in indices:
                headers[index] = ds
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - decoders raise anything on truncated data
            return SkippedItem(header.name, f"pixel data unreadable ({type(exc).__name__}: {exc})"[:200])
        return None

    # Threads overlap file reading with decoding; the decoders themselves mostly hold the GIL
    # (measured: no gain from 2 threads), hence the fastest decoder first (_pixel_array).
    # Results are taken in file order (deterministic failures).
    done = 0
    workers = max(1, min(len(by_file), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [(indices, pool.submit(decode_file, path, indices)) for path, indices in by_file.items()]
        for indices, job in jobs:
            failure = job.result()
            if failure is not None:
                failures.append(failure)
            done += len(indices)
            if progress is not None:
                progress("decoding slices", done, len(stack.slices))
    return volume, ok, failures, headers


def _pixel_array(ds) -> np.ndarray:
    """``ds.pixel_array`` decoded by the fastest plugin for its transfer syntax; if that plugin
    is missing or fails, pydicom's own order (which tries every available plugin)."""
    plugin = _FASTEST_PLUGIN.get(str(getattr(ds.file_meta, "TransferSyntaxUID", "")))
    if plugin is not None:
        try:
            ds.pixel_array_options(decoding_plugin=plugin)
            return ds.pixel_array
        except Exception:  # noqa: BLE001 - plugin absent or data it cannot decode: let the others try
            ds.pixel_array_options(decoding_plugin="")
    return ds.pixel_array


def _covered_failures(
    stack: Stack, keep: np.ndarray, failures: list[SkippedItem], covered: list[SkippedItem]
) -> list[SkippedItem]:
    """The decode failures at positions no decoded slice holds; the others go to ``covered``."""
    decoded = stack.distances_mm[keep]
    remaining = []
    for failure in failures:
        index = next(i for i, s in enumerate(stack.slices) if s.name == failure.item)
        if decoded.size and np.abs(decoded - stack.distances_mm[index]).min() <= quality.SAME_POSITION_MM:
            covered.append(failure)
        else:
            remaining.append(failure)
    return remaining


def _has_instance_uid(ds) -> bool:
    """SOPInstanceUID present and readable (anonymised series such as P002 leave it empty)."""
    try:
        return "SOPInstanceUID" in ds and ds.get("SOPInstanceUID") is not None
    except Exception:  # noqa: BLE001 - a garbled element raises on first access
        return False


def _guarded_source(datasets: list, slices: list, pixel_spacing, *, where: str):
    """:func:`dicom_source` of the decoded slices; a header it cannot use is an InputError that
    names the file (every slice needs a SOPInstanceUID element: derived objects refer to it)."""
    lacking = [s.name for s, ds in zip(slices, datasets) if not _has_instance_uid(ds)]
    if lacking:
        raise InputError(
            f"SOPInstanceUID is missing or unreadable in {len(lacking)} image(s) ({', '.join(lacking[:3])})",
            where=where,
            todo="the files are damaged or were written by a broken converter: re-export the series",
        )
    try:
        return dicom_source(
            datasets,
            frames=[s.frame for s in slices],
            positions=[s.position for s in slices],
            orientations=[s.orientation for s in slices],
            pixel_spacing=pixel_spacing,
        )
    except Exception as exc:  # noqa: BLE001 - a garbled element surfaces on first access
        raise InputError(
            f"a DICOM header of the series is corrupt ({type(exc).__name__}: {exc})"[:300],
            where=where,
            todo="re-export the series from the scanner or PACS",
        ) from None


def check_pixel_data_length(ds, header) -> None:
    """Uncompressed pixel data must hold exactly what Rows x Columns x frames x bits describe
    (one padding byte allowed); pydicom would silently use a prefix of longer data."""
    from pydicom.uid import UID

    if UID(header.transfer_syntax).is_compressed:
        return  # encapsulated: the decoded frame's shape is checked instead
    expected = header.expected_pixel_bytes
    found = len(ds.PixelData)
    if found not in (expected, expected + 1):
        raise ValueError(
            f"the pixel data hold {found} bytes where Rows x Columns x frames x BitsAllocated "
            f"need {expected}"
        )


def _drop_identical_duplicates(
    stack: Stack, volume: np.ndarray, keep: np.ndarray, distances: np.ndarray
) -> list[SkippedItem]:
    """Drop pixel-identical slices at one position; raise if they differ."""
    dropped: list[SkippedItem] = []
    for group in quality.duplicate_positions(distances):
        indices = np.flatnonzero(keep)[group]
        reference = indices[0]
        for other in indices[1:]:
            if not np.array_equal(volume[reference], volume[other]):
                names = [stack.slices[i].name for i in indices]
                raise quality.duplicate_error(names, float(distances[group[0]]), where=stack.where)
        for other in indices[1:]:
            keep[other] = False
            dropped.append(
                SkippedItem(stack.slices[other].name, f"duplicate of {stack.slices[reference].name} (identical pixels)")
            )
    return dropped


def parse_age(value: object) -> float | None:
    """DICOM AS (``'045Y'``, ``'006M'``, ``'010W'``, ``'003D'``) -> age in years."""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY]?)\s*", str(value).upper())
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2) or "Y"
    return round(number / {"Y": 1, "M": 12, "W": 52.1775, "D": 365.25}[unit], 3)


def _contrast(value: object) -> str | None:
    text = "\\".join(value) if isinstance(value, tuple) else (str(value) if value else "")
    text = text.strip()
    return None if text.upper() in {"", "NONE", "NO", "N", "NON", "-", "0"} else text


def _float_or_none(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def info_from_meta(meta: dict[str, object], **fields: object) -> ScanInfo:
    """ScanInfo from the series-level attributes kept by the header pass."""
    kernel = meta.get("ConvolutionKernel")
    exposure = meta.get("ExposureInmAs") if meta.get("ExposureInmAs") is not None else meta.get("Exposure")
    sex = str(meta.get("PatientSex") or "").upper() or None
    return ScanInfo(
        format="dicom",
        manufacturer=meta.get("Manufacturer"),  # type: ignore[arg-type]
        manufacturer_model=meta.get("ManufacturerModelName"),  # type: ignore[arg-type]
        convolution_kernel="\\".join(kernel) if isinstance(kernel, tuple) else kernel,  # type: ignore[arg-type]
        body_part=meta.get("BodyPartExamined"),  # type: ignore[arg-type]
        patient_sex=sex if sex in {"M", "F", "O"} else None,
        patient_age=parse_age(meta.get("PatientAge")),
        contrast_agent=_contrast(meta.get("ContrastBolusAgent")),
        kvp=_float_or_none(meta.get("KVP")),
        exposure_mas=_float_or_none(exposure),
        **fields,  # type: ignore[arg-type]
    )


def read_stack(
    stack: Stack,
    *,
    path: str,
    skipped: Sequence[SkippedItem] = (),
    unreadable: Sequence[SkippedItem] = (),
    progress: Progress | None = None,
) -> CTScan:
    """Decode ``stack`` and return it as a canonical :class:`CTScan`.

    Slices whose pixel data cannot be decoded are skipped and counted like unreadable files;
    the slice-position checks then run again, so a lost slice inside the stack is reported as
    missing slices.
    """
    with lenient_pydicom():
        volume, keep, failures, datasets = _decode(stack, progress=progress)
    if not keep.any():
        raise InputError(
            f"none of the {len(stack.slices)} images could be decoded; first failure: {failures[0].reason}",
            where=stack.where,
            todo="check the files are complete (re-export them); for a compressed transfer syntax "
            "convert them with `dcmdjpeg IN OUT` or `gdcmconv --raw IN OUT`",
        )
    failures = _covered_failures(stack, keep, failures, covered := [])
    if failures:
        # A slice of the chosen stack that cannot be decoded is never dropped: the volume
        # would lose a slice (or an end of the lungs) without anyone noticing. Only a copy at
        # a position another, decoded slice holds is skipped (listed and warned about).
        raise InputError(
            f"the pixel data of {len(failures)} of {len(stack.slices)} slice(s) cannot be decoded: "
            f"{failures[0].item}: {failures[0].reason}"
            + (f" (also {', '.join(f.item for f in failures[1:4])})" if len(failures) > 1 else ""),
            where=stack.where,
            todo="re-export or re-transfer the series (the files are damaged or cut short)",
        )
    distances = stack.distances_mm[keep]
    dropped = _drop_identical_duplicates(stack, volume, keep, distances)
    distances = stack.distances_mm[keep]
    spacing_z = quality.check_slice_positions(distances, where=stack.where)
    slices = [s for s, k in zip(stack.slices, keep) if k]
    if not keep.all():  # a copy only when a slice is left out
        volume = volume[keep]
    quality.check_slice_intensities(volume, [s.name for s in slices], where=stack.where)

    warnings = list(stack.warnings)
    steps = np.diff(distances)
    if steps.max() - steps.min() > _UNIFORM_TOLERANCE * spacing_z:
        warnings.append(
            f"slice spacing is not uniform ({steps.min():.2f}-{steps.max():.2f} mm); "
            f"the volume uses the median {spacing_z:.2f} mm"
        )
    unreadable = list(unreadable) + covered
    if unreadable:
        names = ", ".join(u.item for u in unreadable[:3]) + (" ..." if len(unreadable) > 3 else "")
        warnings.append(
            f"{len(unreadable)} unreadable DICOM file(s) were skipped (empty or truncated): {names}"
        )

    first = slices[0]
    orientation = np.asarray(first.orientation, dtype=float)
    row_dir, col_dir = orientation[:3], orientation[3:]
    pixel_spacing = first.pixel_spacing or (1.0, 1.0)
    # Source array (slice, row, column): rows advance along the column cosines and columns along
    # the row cosines (DICOM PS3.3 C.7.6.2.1.1).
    source_affine = affine_from_axes(
        np.asarray(first.position, dtype=float),
        np.stack([stack.normal, col_dir, row_dir]),
        (spacing_z, pixel_spacing[0], pixel_spacing[1]),
    )
    reorientation = canonical_reorientation(source_affine)
    if reorientation.permutation[0] != 0:  # guaranteed by the axial check; guards the z bookkeeping
        raise AssertionError("axial stack did not map slices to the canonical z axis")
    canonical = np.ascontiguousarray(reorientation.apply(volume))
    affine = reoriented_affine(source_affine, reorientation, volume.shape)
    z_positions = [float(s.position[2]) for s in slices]
    names = [s.name for s in slices]
    datasets = [d for d, k in zip(datasets, keep) if k]
    if 0 in reorientation.flips:
        z_positions.reverse()
        names.reverse()
        slices.reverse()
        datasets.reverse()
    with lenient_pydicom():  # real files carry UUIDs as UIDs and the like: kept as they are
        source = _guarded_source(datasets, slices, pixel_spacing, where=stack.where)

    meta = stack.meta
    thicknesses = [s.slice_thickness for s in slices if s.slice_thickness]
    info = info_from_meta(
        meta,
        path=path,
        series_instance_uid=first.series_uid,
        study_instance_uid=first.study_uid,
        modality="CT",
        slice_thickness_mm=float(np.median(thicknesses)) if thicknesses else None,
        transfer_syntax=first.transfer_syntax,
        z_positions_mm=tuple(z_positions),
        source_files=tuple(names),
        skipped=tuple(list(skipped) + dropped + unreadable),
        n_unreadable_files=len(unreadable),
        dicom=source,
    )
    spacing = (spacing_z, float(pixel_spacing[0]), float(pixel_spacing[1]))
    spacing = tuple(spacing[a] for a in reorientation.permutation)
    info = replace(info, series_description=meta.get("SeriesDescription"))
    return build_scan(canonical, spacing, affine, info, reorientation, source_affine, warnings, where=stack.where)


def build_scan(volume, spacing, affine, info, reorientation, source_affine, warnings, *, where: str) -> CTScan:
    """Last step of every reader: HU sanity check, noise estimate and scan warnings, then the CTScan."""
    quality.check_hounsfield(volume, where=where)
    noise = quality.estimate_noise_hu(volume)
    warnings = list(warnings) + quality.scan_warnings(
        volume=volume,
        spacing=spacing,
        slice_thickness_mm=info.slice_thickness_mm,
        contrast_agent=info.contrast_agent,
        body_part=info.body_part,
        noise_hu=noise,
    )
    return CTScan(
        volume=volume,
        spacing=spacing,
        affine=affine,
        info=replace(info, warnings=tuple(warnings), noise_hu=noise),
        source_axes=(reorientation.permutation, reorientation.flips),
        source_affine=source_affine,
    )
