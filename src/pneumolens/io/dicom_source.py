"""What a DICOM output needs of the source series: headers, UIDs, patient and study attributes.

The DICOM reader fills :attr:`pneumolens.io.scan.ScanInfo.dicom` with a :class:`DicomSource`:
one header (a pydicom ``Dataset`` without its pixel data) per slice of the canonical volume, in
canonical slice order, plus the identifiers a derived object must repeat to land in the same
patient, study and frame of reference (DICOM PS3.3 C.7.1.1 Patient, C.7.2.1 General Study,
C.7.2.2 Patient Study, C.7.4.1 Frame of Reference modules).

Unlike the rest of :class:`~pneumolens.io.scan.ScanInfo`, this object holds patient identifiers
(name, ID, birth date): a DICOM SEG/SR sent back to PACS must carry them. It is therefore left
out of ``repr`` and of ``analysis.json``; never log it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Patient module (PS3.3 C.7.1.1) attributes copied into derived objects.
PATIENT_KEYWORDS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
)
#: General Study (C.7.2.1) and Patient Study (C.7.2.2) module attributes copied into derived objects.
STUDY_KEYWORDS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
)


@dataclass(frozen=True)
class DicomSource:
    """The source DICOM series of a scan, as far as derived DICOM objects need it.

    Attributes
    ----------
    datasets
        One pydicom ``Dataset`` per slice of the canonical volume (index 0: the most inferior
        slice), read from the source files and stripped of pixel data. Slices of one enhanced
        multi-frame file share one dataset.
    frame_numbers
        Per slice, the 1-based frame number within a multi-frame dataset (``None`` for
        single-frame images).
    sop_instance_uids
        Per slice, the SOPInstanceUID of the image it came from.
    positions, orientations
        Per slice, ImagePositionPatient (LPS mm) and ImageOrientationPatient (row then column
        direction cosines) as read (for multi-frame images: from the per-frame or shared
        functional groups).
    pixel_spacing
        PixelSpacing ``(between rows, between columns)`` mm.
    study_instance_uid, series_instance_uid, frame_of_reference_uid, sop_class_uid
        Identifiers of the source series.
    patient, study
        Patient and study attributes present in the source (keywords of
        :data:`PATIENT_KEYWORDS` and :data:`STUDY_KEYWORDS`), as pydicom values.
    """

    datasets: tuple[Any, ...] = field(repr=False, compare=False, hash=False)
    frame_numbers: tuple[int | None, ...]
    sop_instance_uids: tuple[str, ...]
    positions: tuple[tuple[float, float, float], ...]
    orientations: tuple[tuple[float, ...], ...]
    pixel_spacing: tuple[float, float]
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str | None
    sop_class_uid: str
    patient: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)
    study: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        n = len(self.datasets)
        lengths = {len(self.frame_numbers), len(self.sop_instance_uids), len(self.positions), len(self.orientations)}
        if lengths != {n} or n == 0:
            raise ValueError(f"DicomSource needs one entry per slice in every per-slice field, got {lengths} for {n}")

    @property
    def n_slices(self) -> int:
        return len(self.datasets)

    @property
    def is_multiframe(self) -> bool:
        return any(f is not None for f in self.frame_numbers)

    def unique_datasets(self) -> list[Any]:
        """The source datasets, each once (a multi-frame file once, not once per frame), in slice order."""
        seen: dict[int, Any] = {}
        for ds in self.datasets:
            seen.setdefault(id(ds), ds)
        return list(seen.values())

    def identifying_attributes(self) -> dict[str, Any]:
        """Patient and study attributes to copy into a derived object (and nothing else)."""
        return {**self.patient, **self.study}


def _present(ds, keywords: Sequence[str]) -> dict[str, Any]:
    return {k: ds[k].value for k in keywords if k in ds}


def dicom_source(
    datasets: Sequence[Any],
    *,
    frames: Sequence[int | None],
    positions: Sequence[Sequence[float]],
    orientations: Sequence[Sequence[float]],
    pixel_spacing: Sequence[float],
) -> DicomSource:
    """Build a :class:`DicomSource` from per-slice headers in canonical slice order.

    Parameters
    ----------
    datasets
        One header per slice (pixel data already removed); multi-frame slices share one.
    frames
        0-based frame index per slice, ``None`` for single-frame images (the reader's
        :attr:`~pneumolens.io.dicom_headers.SliceHeader.frame`).
    positions, orientations, pixel_spacing
        Geometry of each slice, as parsed by the header pass.
    """
    first = datasets[0]
    if any("PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds for ds in datasets):
        raise ValueError("DicomSource keeps headers only: remove the pixel data first")
    return DicomSource(
        datasets=tuple(datasets),
        frame_numbers=tuple(None if f is None else int(f) + 1 for f in frames),
        sop_instance_uids=tuple(str(ds.SOPInstanceUID) for ds in datasets),
        positions=tuple(tuple(float(v) for v in p) for p in positions),  # type: ignore[misc]
        orientations=tuple(tuple(float(v) for v in o) for o in orientations),
        pixel_spacing=(float(pixel_spacing[0]), float(pixel_spacing[1])),
        study_instance_uid=str(first.get("StudyInstanceUID") or ""),
        series_instance_uid=str(first.get("SeriesInstanceUID") or ""),
        frame_of_reference_uid=str(first.FrameOfReferenceUID) if first.get("FrameOfReferenceUID") else None,
        sop_class_uid=str(first.get("SOPClassUID") or ""),
        patient=_present(first, PATIENT_KEYWORDS),
        study=_present(first, STUDY_KEYWORDS),
    )


def strip_pixels(ds) -> Any:
    """``ds`` without pixel data (in place; also drops pydicom's cached pixel array)."""
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in ds:
            delattr(ds, keyword)
    return ds


def frame_geometry(source: DicomSource, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origin (LPS mm), row direction and column direction of slice ``index`` (PS3.3 C.7.6.2.1.1)."""
    orientation = np.asarray(source.orientations[index], dtype=float)
    return np.asarray(source.positions[index], dtype=float), orientation[:3], orientation[3:]
