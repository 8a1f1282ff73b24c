"""Group DICOM image headers into stacks and pick the chest CT stack to analyse.

A stack is the images of one SeriesInstanceUID (split by AcquisitionNumber when two
acquisitions share positions). Each stack is checked with :mod:`pneumolens.quality`; among the
stacks that pass, the one with the most cranio-caudal coverage, then the thinnest slices, then
the sharpest (lung) kernel, then the most slices is chosen. Every other stack is reported as
skipped with its reason. When none passes, the error of the stack that got furthest through
the checks is raised, so the user reads about the problem that matters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from pneumolens import quality
from pneumolens.errors import InputError
from pneumolens.io.dicom_headers import CT_SOP_CLASSES, SliceHeader, patient_key
from pneumolens.io.orientation import orientation_label
from pneumolens.io.scan import SkippedItem

# How far a stack got through the checks; the best failing stack's error is the one raised.
_RANK_MODALITY, _RANK_LOCALIZER, _RANK_REFORMAT, _RANK_MIXED, _RANK_GEOMETRY = 0, 1, 2, 3, 4
_RANK_SINGLE, _RANK_STACK = 5, 6


@dataclass(frozen=True)
class Stack:
    """A checked, analysable image stack, sorted along the slice normal (ascending)."""

    where: str
    slices: tuple[SliceHeader, ...]
    distances_mm: np.ndarray  # position of each slice along the normal, ascending
    normal: np.ndarray
    spacing_mm: float  # median distance between distinct positions
    duplicates: tuple[tuple[int, ...], ...]  # groups of indices into ``slices`` at one position
    warnings: tuple[str, ...]
    dropped: tuple[SkippedItem, ...] = ()  # localizer images removed from the series

    @property
    def first(self) -> SliceHeader:
        return self.slices[0]

    @property
    def meta(self) -> dict[str, object]:
        return dict(self.first.meta)

    @property
    def kernel(self) -> str | None:
        value = self.meta.get("ConvolutionKernel")
        if isinstance(value, tuple):
            return "\\".join(value)
        return value  # type: ignore[return-value]

    @property
    def coverage_mm(self) -> float:
        return float(self.distances_mm[-1] - self.distances_mm[0]) + self.spacing_mm

    @property
    def thickness_mm(self) -> float:
        values = [s.slice_thickness for s in self.slices if s.slice_thickness]
        return float(np.median(values)) if values else self.spacing_mm

    def describe(self) -> str:
        n = len(self.distances_mm)
        return (
            f"{n} slices, {self.coverage_mm:.0f} mm coverage, {self.thickness_mm:g} mm thick, "
            f"kernel {self.kernel or 'unknown'}"
        )


@dataclass(frozen=True)
class _Failure:
    rank: int
    where: str
    error: InputError
    modality: str = ""
    orientation: str = ""


@dataclass(frozen=True)
class Selection:
    """The stack to read and what was left out."""

    stack: Stack
    skipped: tuple[SkippedItem, ...] = field(default=())


# --- kernels -------------------------------------------------------------------------------

_LUNG_KERNELS = re.compile(r"^(LUNG|L|YA|YB|YC|YD|FC5\d|FC8\d|FL\d*|HR\d*)$")
_SHARP_KERNELS = re.compile(r"^(BONE|BONEPLUS|EDGE|DETAIL|SHARP|D|E|FC3\d|FC8\d)$")
_SIEMENS = re.compile(r"^(B|BR|BL|BV|I|IR|Q|QR|HR|BF)(\d{2})[A-Z]?$")


def kernel_sharpness(kernel: str | None) -> int:
    """2 for a lung kernel, 1 for another sharp kernel, 0 for soft/standard or unknown.

    Recognises Siemens (``B70f``, ``Br59``, ``I50f``: number >= 50 is sharp, >= 60 lung), GE
    (``LUNG``, ``BONE``, ``BONEPLUS`` vs ``STANDARD``/``SOFT``), Philips (``L``, ``YA``-``YD``
    lung; ``D``/``E`` sharp vs ``A``/``B``/``C``) and Canon/Toshiba (``FC5x``/``FC8x`` lung vs
    ``FC0x``/``FC1x`` body).
    """
    if not kernel:
        return 0
    first = kernel.split("\\")[0].strip().upper()
    if _LUNG_KERNELS.match(first):
        return 2
    siemens = _SIEMENS.match(first)
    if siemens:
        number = int(siemens.group(2))
        return 2 if number >= 60 else 1 if number >= 50 else 0
    return 1 if _SHARP_KERNELS.match(first) else 0


# --- grouping and checks -------------------------------------------------------------------


def _where(uid: str, slices: Sequence[SliceHeader], suffix: str = "") -> str:
    folders = {str(PurePosixPath(s.name).parent) for s in slices}
    place = folders.pop() if len(folders) == 1 else f"{len(folders)} folders"
    place = "the input folder" if place == "." else place
    return f"series {uid}{suffix} ({len(slices)} image(s) in {place})"


def _orientation_key(header: SliceHeader) -> tuple:
    iop = tuple(round(v, 3) for v in header.orientation) if header.orientation else None
    return (iop, header.rows, header.columns)


def _distances(slices: Sequence[SliceHeader], normal: np.ndarray) -> np.ndarray:
    return np.array([np.dot(s.position, normal) for s in slices])


def _evaluate(uid: str, slices: list[SliceHeader], suffix: str = "") -> list[Stack | _Failure]:
    """Check one series (or one acquisition of it); may split it by acquisition."""
    where = _where(uid, slices, suffix)
    first = slices[0]
    try:
        warning = quality.check_modality(
            first.modality, first.sop_class, is_ct_sop_class=first.sop_class in CT_SOP_CLASSES, where=where
        )
    except InputError as exc:
        return [_Failure(_RANK_MODALITY, where, exc, modality=first.modality or "unknown")]
    warnings = [warning] if warning else []
    if first.series_uid is None:
        warnings.append(
            "the images have no SeriesInstanceUID; they were grouped by series number, description "
            "and image size"
        )

    images = [s for s in slices if not s.is_localizer]
    dropped = tuple(SkippedItem(s.name, "scout/localizer image") for s in slices if s.is_localizer)
    if not images:
        try:
            quality.check_not_localizer(first.image_type, first.rows, first.columns, where=where)
        except InputError as exc:
            return [_Failure(_RANK_LOCALIZER, where, exc)]
    if dropped:
        where = _where(uid, images, suffix)

    checks = (
        ("ImageOrientationPatient", lambda s: bool(s.orientation) and s.normal is not None),
        ("ImagePositionPatient", lambda s: bool(s.position)),
        ("PixelSpacing", lambda s: bool(s.pixel_spacing)),
    )
    lacking = {keyword: [s.name for s in images if not ok(s)] for keyword, ok in checks}
    missing = [keyword for keyword, files in lacking.items() if files]
    if missing:
        files = sorted({f for keyword in missing for f in lacking[keyword]})
        error = quality.missing_geometry(missing, where=where, files=files, n_images=len(images))
        return [_Failure(_RANK_GEOMETRY, where, error)]

    groups: dict[tuple, list[SliceHeader]] = {}
    for s in images:
        groups.setdefault(_orientation_key(s), []).append(s)
    labels = [orientation_label(g[0].normal) for g in groups.values()]
    if len(set(labels)) > 1:
        try:
            quality.check_single_orientation(labels, where=where)
        except InputError as exc:
            rank = _RANK_MIXED if "axial" in labels else _RANK_REFORMAT
            return [_Failure(rank, where, exc, orientation="mixed " + "/".join(sorted(set(labels))))]
    try:
        quality.check_axial(labels[0], where=where)
    except InputError as exc:
        return [_Failure(_RANK_REFORMAT, where, exc, orientation=labels[0])]
    try:
        check_slice_consistency(images, where=where)
    except InputError as exc:
        return [_Failure(_RANK_STACK, where, exc, orientation="axial")]

    normal = images[0].normal
    distances = _distances(images, normal)
    order = np.argsort(distances, kind="stable")
    images = [images[i] for i in order]
    distances = distances[order]
    duplicates = quality.duplicate_positions(distances)
    if duplicates and not suffix:
        acquisitions = {s.acquisition_number for s in images}
        if len(acquisitions) > 1 and all(
            len({images[i].acquisition_number for i in g}) == len(g) for g in duplicates
        ):
            # Two acquisitions (e.g. inspiration/expiration) under one series UID: each is a stack.
            out: list[Stack | _Failure] = []
            for number in sorted(acquisitions, key=lambda a: (a is None, a)):
                part = [s for s in images if s.acquisition_number == number]
                out.extend(_evaluate(uid, part, f" acquisition {number}"))
            return out

    unique = np.delete(distances, [i for g in duplicates for i in g[1:]])
    try:
        for ts in sorted({s.transfer_syntax for s in images}):
            quality.check_transfer_syntax(ts, where=where)
        spacing = quality.check_slice_positions(unique, where=where)
        tilts = [abs(s.gantry_tilt) for s in images if s.gantry_tilt is not None]
        positions = np.array([images[0].position, images[-1].position])
        quality.check_gantry_tilt(normal, positions, max(tilts) if tilts else None, where=where)
    except InputError as exc:
        rank = _RANK_SINGLE if len(unique) < 2 else _RANK_STACK
        return [_Failure(rank, where, exc, orientation="axial")]
    return [
        Stack(
            where=where,
            slices=tuple(images),
            distances_mm=distances,
            normal=normal,
            spacing_mm=spacing,
            duplicates=tuple(tuple(g) for g in duplicates),
            warnings=tuple(warnings),
            dropped=dropped,
        )
    ]


def check_slice_consistency(images: Sequence[SliceHeader], *, where: str) -> None:
    """Per-slice checks before stacking: one image size, one orientation, one pixel spacing,
    and a sane rescale on every slice; each refusal names the files concerned."""
    names = [s.name for s in images]
    sizes = [(s.rows, s.columns) for s in images]
    quality.check_image_size(names, sizes, where=where)
    quality.check_orientation_consistency(names, [s.orientation for s in images], where=where)
    quality.check_pixel_spacing(names, [s.pixel_spacing for s in images], sizes, where=where)
    quality.check_rescale(names, [s.slope for s in images], [s.intercept for s in images], where=where)


def _preference(stack: Stack, max_coverage: float) -> tuple:
    """Sort key: most coverage (within 10 %), thinnest slices, sharpest kernel, most slices."""
    return (
        stack.coverage_mm < 0.9 * max_coverage,
        round(stack.thickness_mm * 2) / 2,
        -kernel_sharpness(stack.kernel),
        -len(stack.slices),
        stack.where,
    )


def select_series(
    headers: Sequence[SliceHeader], *, where: str, series: str | None = None, patient: str | None = None
) -> Selection:
    """Pick the chest CT stack to analyse among ``headers``.

    Parameters
    ----------
    headers
        Image headers of every file of the input.
    where
        The input, for messages.
    series
        SeriesInstanceUID to analyse (``--series``): only its images are considered.
    patient
        PatientID to analyse (``--patient``): only its images are considered. The ID is
        compared through :func:`~pneumolens.io.dicom_headers.patient_key` and never kept.

    Raises
    ------
    InputError
        When no stack can be analysed: the error of the stack that passed most checks, or a
        summary when all are non-CT or all are reformats; when the images belong to more than
        one patient or study and neither ``series`` nor ``patient`` picks one.
    """
    headers = _picked(headers, where=where, series=series, patient=patient)
    by_series: dict[str, list[SliceHeader]] = {}
    for h in headers:
        by_series.setdefault(h.series_key, []).append(h)
    results = [r for uid, slices in by_series.items() for r in _evaluate(uid, slices)]
    stacks = [r for r in results if isinstance(r, Stack)]
    failures = [r for r in results if isinstance(r, _Failure)]
    skipped = [SkippedItem(f.where, f.error.what) for f in failures]
    if not stacks:
        best = max(failures, key=lambda f: f.rank)
        if best.rank == _RANK_MODALITY:
            raise quality.no_ct_series(where, [f.modality for f in failures])
        if best.rank == _RANK_REFORMAT:
            labels = [f.orientation for f in failures if f.rank == _RANK_REFORMAT]
            raise quality.no_axial_series(where, labels)
        raise best.error
    check_one_patient_and_study(headers, where=where)
    max_coverage = max(s.coverage_mm for s in stacks)
    ranked = sorted(stacks, key=lambda s: _preference(s, max_coverage))
    chosen = ranked[0]
    skipped += [
        SkippedItem(s.where, f"not selected: {s.describe()}; chose {chosen.describe()}") for s in ranked[1:]
    ]
    return Selection(chosen, tuple(list(chosen.dropped) + skipped))


def _picked(
    headers: Sequence[SliceHeader], *, where: str, series: str | None, patient: str | None
) -> list[SliceHeader]:
    """The headers of the series and/or patient the user picked (all when none was picked)."""
    picked = list(headers)
    if patient is not None:
        key = patient_key(patient)
        picked = [h for h in picked if h.patient_key == key]
        if not picked:
            raise InputError(
                f"no image of the given --patient was found among {len(headers)} image(s) of "
                f"{len({h.patient_key for h in headers})} patient(s)",
                where=where,
                todo="check the PatientID (as written in the DICOM files), or pick the series with --series UID",
            )
    if series is not None:
        chosen = [h for h in picked if h.series_uid == series.strip()]
        if not chosen:
            raise InputError(
                f"no image of series {series} was found; the input holds: {describe_series(picked)}",
                where=where,
                todo="give one of the SeriesInstanceUIDs listed",
            )
        picked = chosen
    return picked


def describe_series(headers: Sequence[SliceHeader], *, limit: int = 8) -> str:
    """``study UID (patient N): series UID 'description' (n images); ...`` without patient IDs."""
    patients: dict[str | None, int] = {}
    series: dict[tuple, int] = {}
    for h in headers:
        patients.setdefault(h.patient_key, len(patients) + 1)
        key = (patients[h.patient_key], h.study_uid or "(no StudyInstanceUID)", h.series_key,
               dict(h.meta).get("SeriesDescription") or "")
        series[key] = series.get(key, 0) + 1
    shown = [
        f"patient {p}, study {study}: series {uid} '{description}' ({n} image(s))"
        for (p, study, uid, description), n in sorted(series.items(), key=lambda item: item[0][:3])
    ]
    more = f"; and {len(shown) - limit} more series" if len(shown) > limit else ""
    return "; ".join(shown[:limit]) + more


def check_one_patient_and_study(headers: Sequence[SliceHeader], *, where: str) -> None:
    """Refuse images of several patients or studies: analysing one of them and skipping the
    others would let a result be filed under the wrong person."""
    patients = {h.patient_key for h in headers}
    studies = {h.study_uid for h in headers}
    if len(patients) > 1 or len(studies) > 1:
        raise InputError(
            f"the input holds images of {len(patients)} patient(s) and {len(studies)} study(ies); "
            f"pneumolens analyses one series of one patient: {describe_series(headers)}",
            where=where,
            todo="pick the series with --series UID (or the patient with --patient ID), or give a "
            "folder with one patient's study",
        )
