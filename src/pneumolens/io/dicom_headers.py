"""The header pass over DICOM files: one :class:`SliceHeader` per image plane, no pixels read.

Classic CT files give one header each; an enhanced (or legacy converted enhanced) multi-frame
CT file gives one header per frame, from its shared and per-frame functional groups
(DICOM PS3.3 C.7.6.16). Patient names and IDs are never read into these objects.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumolens import quality
from pneumolens.io.scan import SkippedItem

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
LEGACY_ENHANCED_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2.2"
CT_SOP_CLASSES = {CT_IMAGE_STORAGE, ENHANCED_CT_STORAGE, LEGACY_ENHANCED_CT_STORAGE}
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class SliceHeader:
    """What the reader needs of one image plane (a file, or one frame of a multi-frame file)."""

    path: Path
    name: str  # path relative to the input root, POSIX style: reported, never a patient ID
    frame: int | None  # frame index in a multi-frame file, None for single-frame files
    series_uid: str | None
    study_uid: str | None
    sop_class: str
    modality: str | None
    image_type: tuple[str, ...]
    rows: int
    columns: int
    pixel_spacing: tuple[float, float] | None  # (between rows, between columns) mm
    orientation: tuple[float, ...] | None  # ImageOrientationPatient (6 values)
    position: tuple[float, float, float] | None  # ImagePositionPatient
    slope: float | None  # RescaleSlope; None when missing (never defaulted)
    intercept: float | None  # RescaleIntercept; None when missing
    slice_thickness: float | None
    gantry_tilt: float | None
    acquisition_number: int | None
    instance_number: int | None
    transfer_syntax: str
    samples_per_pixel: int
    # Series-level metadata, kept from the first slice of the series.
    meta: tuple[tuple[str, object], ...]
    patient_key: str | None = None  # one-way hash of PatientID (the ID itself is never kept)
    file_size: int = 0  # bytes of the file on disk
    bits_allocated: int = 16
    n_frames: int = 1

    @property
    def expected_pixel_bytes(self) -> int:
        """Bytes of uncompressed pixel data that Rows x Columns x frames x samples x bits need."""
        return self.rows * self.columns * self.n_frames * self.samples_per_pixel * max(self.bits_allocated, 1) // 8

    @property
    def normal(self) -> np.ndarray | None:
        if self.orientation is None:
            return None
        row, col = np.asarray(self.orientation[:3]), np.asarray(self.orientation[3:])
        n = np.cross(row, col)
        norm = np.linalg.norm(n)
        return n / norm if norm > 0 else None

    @property
    def series_key(self) -> str:
        """SeriesInstanceUID, or when an anonymiser removed it, a stand-in built from the series
        number and description and the image geometry (images of one series share these)."""
        if self.series_uid:
            return self.series_uid
        meta = dict(self.meta)
        spacing = "x".join(f"{v:g}" for v in self.pixel_spacing) if self.pixel_spacing else "?"
        return (
            f"(no SeriesInstanceUID: number {meta.get('SeriesNumber') or '?'}, "
            f"'{meta.get('SeriesDescription') or ''}', {self.rows}x{self.columns} pixels of {spacing} mm)"
        )

    @property
    def is_localizer(self) -> bool:
        return "LOCALIZER" in self.image_type or min(self.rows, self.columns) <= 1


# Series-level attributes copied into ScanInfo (keyword -> ScanInfo field is done by the reader).
_META_KEYWORDS = (
    "Manufacturer",
    "ManufacturerModelName",
    "ConvolutionKernel",
    "BodyPartExamined",
    "PatientSex",
    "PatientAge",
    "ContrastBolusAgent",
    "KVP",
    "Exposure",
    "ExposureInmAs",
    "SeriesDescription",
    "SeriesNumber",
)


def _float(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _floats(value: object, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(np.isfinite(out)) else None


def patient_key(patient_id: object) -> str | None:
    """A one-way hash of a PatientID: tells patients apart without keeping the identifier."""
    text = str(patient_id or "").strip()
    if not text:
        return None
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:12]


def _meta_value(value: object) -> object:
    """Plain Python value of a DICOM element value (multi-values become tuples of str)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return tuple(str(v) for v in value)  # type: ignore[union-attr]
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    return text or None


@contextlib.contextmanager
def lenient_pydicom() -> Iterator[None]:
    """Silence pydicom's value validation while reading and using datasets.

    Real files break VR rules (a UUID as UI, odd lengths); pydicom would warn and log on each
    value access, which says nothing the user can act on: we validate what we use ourselves.
    """
    from pydicom import config

    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        config.settings.reading_validation_mode = previous


def read_dataset(path: Path, *, stop_before_pixels: bool):
    """``pydicom.dcmread`` that accepts files without the DICM preamble but not non-DICOM files.

    Returns ``None`` when the file is not DICOM; raises ``OSError``/``ValueError``-like
    exceptions from pydicom when it is DICOM but unreadable (truncated).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        pass
    if not _may_be_raw_dicom(path):
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
    except Exception:  # noqa: BLE001 - forced parsing of a non-DICOM file fails any way it likes
        return None
    # A forced read of random bytes yields a dataset without the attributes of an image.
    if "SOPClassUID" not in ds and "Rows" not in ds:
        return None
    return ds


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except (OSError, TypeError, AttributeError):
        return 0


#: First group numbers of a DICOM data set written without preamble (file meta or identifying group).
_RAW_DICOM_GROUPS = {0x0002, 0x0008}


def _may_be_raw_dicom(path: Path) -> bool:
    """Whether a file without the ``DICM`` preamble can be a bare DICOM data set.

    Such files start with an element of group 0002 or 0008 (little or big endian). Anything
    else is not parsed at all: a forced parse of arbitrary bytes can take minutes on a large
    file (a gigabyte of zeros is a long run of empty elements).
    """
    with open(path, "rb") as f:
        head = f.read(2)
    if len(head) < 2:
        return False
    return int.from_bytes(head, "little") in _RAW_DICOM_GROUPS or int.from_bytes(head, "big") in _RAW_DICOM_GROUPS


def _sequence_item(ds, keyword: str):
    seq = ds.get(keyword)
    return seq[0] if seq else None


def _functional(groups: list, keyword: str, attribute: str):
    """First value of ``attribute`` in ``keyword`` sequence among functional-group items."""
    for group in groups:
        if group is None:
            continue
        item = _sequence_item(group, keyword)
        if item is not None and attribute in item:
            return item.get(attribute)
    return None


def _in_groups(groups: list, keyword: str):
    """Value of ``keyword`` in any sequence item of the functional-group items."""
    for group in groups:
        if group is None:
            continue
        for element in group:
            if element.VR == "SQ" and element.value and keyword in element.value[0]:
                return element.value[0].get(keyword)
    return None


def headers_of_dataset(ds, path: Path, name: str) -> list[SliceHeader]:
    """One header per image plane of a dataset read with ``stop_before_pixels``."""
    sop_class = str(ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID") or "")
    transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID") or "1.2.840.10008.1.2")
    meta = tuple((k, _meta_value(ds.get(k))) for k in _META_KEYWORDS)
    common = {
        "path": path,
        "name": name,
        "series_uid": str(ds.get("SeriesInstanceUID") or "") or None,
        "study_uid": str(ds.get("StudyInstanceUID") or "") or None,
        "sop_class": sop_class,
        "modality": str(ds.get("Modality") or "").strip().upper() or None,
        "image_type": tuple(str(v).upper() for v in (ds.get("ImageType") or ())),
        "rows": _int(ds.get("Rows")) or 0,
        "columns": _int(ds.get("Columns")) or 0,
        "slice_thickness": _float(ds.get("SliceThickness")),
        "gantry_tilt": _float(ds.get("GantryDetectorTilt")),
        "acquisition_number": _int(ds.get("AcquisitionNumber")),
        "instance_number": _int(ds.get("InstanceNumber")),
        "transfer_syntax": transfer_syntax,
        "samples_per_pixel": _int(ds.get("SamplesPerPixel")) or 1,
        "meta": meta,
        "patient_key": patient_key(ds.get("PatientID")),
        "file_size": _file_size(path),
        "bits_allocated": _int(ds.get("BitsAllocated")) or 16,
        "n_frames": max(_int(ds.get("NumberOfFrames")) or 1, 1),
    }
    n_frames = _int(ds.get("NumberOfFrames")) or 1
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None:
        shared = _sequence_item(ds, "SharedFunctionalGroupsSequence")
        # Enhanced CT keeps kernel, kVp, exposure... in functional groups (CT Reconstruction,
        # CT X-Ray Details, CT Exposure; legacy converted: Unassigned Converted Attributes).
        first_groups = [shared, per_frame[0] if per_frame else None]
        common["meta"] = tuple(
            (k, v if v is not None else _meta_value(_in_groups(first_groups, k))) for k, v in meta
        )
        headers = []
        for index in range(min(n_frames, len(per_frame))):
            groups = [per_frame[index], shared]
            headers.append(
                SliceHeader(
                    frame=index,
                    pixel_spacing=_floats(_functional(groups, "PixelMeasuresSequence", "PixelSpacing"), 2),
                    orientation=_floats(
                        _functional(groups, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
                    ),
                    position=_floats(_functional(groups, "PlanePositionSequence", "ImagePositionPatient"), 3),
                    slope=_float(_functional(groups, "PixelValueTransformationSequence", "RescaleSlope")),
                    intercept=_float(_functional(groups, "PixelValueTransformationSequence", "RescaleIntercept")),
                    **{
                        **common,
                        "slice_thickness": _float(_functional(groups, "PixelMeasuresSequence", "SliceThickness"))
                        or common["slice_thickness"],
                    },
                )
            )
        return headers
    single = SliceHeader(
        frame=None if n_frames == 1 else 0,
        pixel_spacing=_floats(ds.get("PixelSpacing"), 2),
        orientation=_floats(ds.get("ImageOrientationPatient"), 6),
        position=_floats(ds.get("ImagePositionPatient"), 3),
        slope=_float(ds.get("RescaleSlope")),
        intercept=_float(ds.get("RescaleIntercept")),
        **common,
    )
    return [single]


@dataclass(frozen=True)
class HeaderScan:
    """Result of the header pass over a set of files."""

    headers: tuple[SliceHeader, ...]
    skipped: tuple[SkippedItem, ...]  # non-DICOM files, DICOMDIR, non-image objects...
    unreadable: tuple[SkippedItem, ...]  # DICOM files that could not be parsed (zero-byte, truncated)
    n_files: int
    non_image_modalities: tuple[str, ...] = ()  # Modality of each DICOM object without pixels (SR, PR...)


def scan_headers(files: Sequence[Path], root: Path | None, *, progress: Progress | None = None) -> HeaderScan:
    """Read the headers of ``files`` (``stop_before_pixels``), sorting out what is not an image.

    Parameters
    ----------
    files
        Candidate files.
    root
        Folder the reported names are relative to (``None``: file names only).
    progress
        Called as ``progress("reading headers", done, total)``.
    """
    headers: list[SliceHeader] = []
    skipped: list[SkippedItem] = []
    unreadable: list[SkippedItem] = []
    non_images: list[str] = []
    total = len(files)
    with lenient_pydicom():
        for done, path in enumerate(files, start=1):
            _scan_one(path, _relative_name(path, root), headers, skipped, unreadable, non_images)
            if progress is not None and (done % 32 == 0 or done == total):
                progress("reading headers", done, total)
    if unreadable:
        logger.warning("%d unreadable DICOM file(s) skipped", len(unreadable))
    return HeaderScan(tuple(headers), tuple(skipped), tuple(unreadable), total, tuple(non_images))


def _scan_one(
    path: Path,
    name: str,
    headers: list[SliceHeader],
    skipped: list[SkippedItem],
    unreadable: list[SkippedItem],
    non_images: list[str],
) -> None:
    """Read one file's header into one of the lists.

    Everything pydicom does with the file happens inside the guard: its elements are parsed
    lazily, so a garbled file-meta or data element (an unknown VR, a bad length) raises on
    first access, not when the file is opened.
    """
    if path.stat().st_size == 0:
        unreadable.append(SkippedItem(name, "empty file (0 bytes)"))
        return
    try:
        ds = read_dataset(path, stop_before_pixels=True)
        if ds is None:
            skipped.append(SkippedItem(name, "not a DICOM file"))
            return
        sop_class = str(ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID") or "")
        if sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
            skipped.append(SkippedItem(name, "DICOMDIR index (the images are read from the folder)"))
            return
        if "Rows" not in ds or "Columns" not in ds:
            if _looks_truncated(ds, sop_class):
                unreadable.append(SkippedItem(name, "unreadable DICOM (truncated: image attributes missing)"))
                return
            modality = str(ds.get("Modality") or "").strip().upper() or "unknown"
            non_images.append(modality)
            skipped.append(SkippedItem(name, f"not an image (modality {modality})"))
            return
        found = headers_of_dataset(ds, path, name)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on truncated or garbled files
        unreadable.append(SkippedItem(name, f"unreadable DICOM header ({type(exc).__name__}: truncated or corrupt)"))
        return
    if found:
        quality.check_file_size(found[0].file_size, found[0].expected_pixel_bytes, name=name)
    headers.extend(found)


def _looks_truncated(ds, sop_class: str) -> bool:
    """An image object without Rows, or an object without Modality and SOP class, was cut short
    (pydicom stops quietly at the end of a file cut between two elements)."""
    from pydicom.uid import UID

    if "Modality" not in ds and "SOPClassUID" not in ds:
        return True
    return bool(sop_class) and "Image" in UID(sop_class).name


def _relative_name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.name
