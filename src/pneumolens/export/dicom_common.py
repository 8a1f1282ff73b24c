"""What the DICOM writers (SEG, SR, secondary capture) share: UIDs, geometry, identification.

UIDs
    Every new UID is a UUID-derived UID under the root ``2.25`` (DICOM PS3.5 B.2): globally
    unique without a registered organisation root. :data:`UID_ROOT` is the one place to change
    this for a site with its own root.
Geometry
    Derived objects reuse the source images' geometry slice by slice: :func:`source_frames`
    cuts each source image's plane out of a canonical mask by the image's own
    ImagePositionPatient/ImageOrientationPatient, so axial, reversed-z and coronal acquisitions
    come out right without any assumption about the slice order.
Identity
    Only the source's patient and study attributes are repeated (:class:`DicomSource.patient`
    and :class:`DicomSource.study`); every other attribute is new.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pneumolens import __version__
from pneumolens.errors import InputError
from pneumolens.io.dicom_source import DicomSource

if TYPE_CHECKING:
    from pneumolens.analysis import Analysis

#: Root of every UID pneumolens creates: UUID-derived UIDs, DICOM PS3.5 B.2.
UID_ROOT = "2.25."
MANUFACTURER = "pneumolens"
#: Series numbers of the derived series (kept apart from typical scanner numbering).
SERIES_NUMBERS = {"seg": 9101, "sr": 9102, "sc": 9103}


def new_uid() -> str:
    """A new UID under :data:`UID_ROOT` (``2.25.<UUID as decimal>``, at most 44 characters)."""
    return f"{UID_ROOT}{uuid.uuid4().int}"


@contextmanager
def lenient() -> Iterator[None]:
    """Read source headers as they are (real files break VR rules, e.g. UUIDs as UIDs)."""
    from pneumolens.io.dicom_headers import lenient_pydicom

    with lenient_pydicom():
        yield


def require_dicom_source(analysis: Analysis) -> DicomSource:
    """The source DICOM headers of ``analysis``; InputError for NIfTI/NRRD/MHA inputs."""
    source = analysis.scan.info.dicom
    if source is None:
        raise InputError(
            f"DICOM outputs need a DICOM input; this scan was read from a {analysis.scan.info.format} file",
            where=analysis.scan.info.path,
            todo="run without --dicom, or analyse the original DICOM series (SEG and SR must reference "
            "the source images, which a volume file does not have)",
        )
    return source


#: Type 2 attributes (present, possibly empty) of the Patient and General Study modules that
#: highdicom copies from the source; anonymised exports often drop them.
TYPE2_IDENTITY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                  "ReferringPhysicianName", "StudyID", "AccessionNumber")


def prepared_source_datasets(source: DicomSource) -> tuple[list[Any], str]:
    """Source headers to hand to highdicom, and the Frame of Reference UID the outputs use.

    The headers are copies (the source objects stay untouched) completed where the source
    lacks what the derived IODs require: empty Type 2 patient/study attributes, and for a
    source without FrameOfReferenceUID (seen in anonymised research exports) one new UID for
    all slices. The derived objects still reference every source image by SOP Instance UID.
    """
    from pydicom import Dataset

    frame_of_reference = source.frame_of_reference_uid or new_uid()
    copies = []
    for ds in source.unique_datasets():
        header = Dataset(dict(ds.items()))  # a new element dict; elements are shared, never edited
        header.file_meta = getattr(ds, "file_meta", Dataset())
        for keyword in TYPE2_IDENTITY:
            if keyword not in header:
                setattr(header, keyword, None)
        if not header.get("FrameOfReferenceUID"):
            if "FrameOfReferenceUID" in header:  # an empty element shared with the source: replace it
                del header.FrameOfReferenceUID
            header.FrameOfReferenceUID = frame_of_reference
        copies.append(header)
    return copies, frame_of_reference


# --- geometry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FramePlane:
    """Where one source image's pixels sit on the canonical grid.

    Pixel ``(row a, column b)`` of the image is canonical voxel
    ``origin + a * row_step + b * column_step``; ``row_step`` and ``column_step`` are unit
    steps (+1 or -1) along one canonical axis each.
    """

    origin: tuple[int, int, int]
    row_axis: int
    row_sign: int
    column_axis: int
    column_sign: int

    @property
    def fixed_axis(self) -> int:
        return 3 - self.row_axis - self.column_axis


def frame_plane(affine: np.ndarray, position, orientation, pixel_spacing, *, tolerance: float = 0.25) -> FramePlane:
    """Map one source image (PS3.3 C.7.6.2.1.1 geometry) onto the canonical grid of ``affine``.

    Raises
    ------
    ValueError
        When the image's pixels do not fall on canonical voxel centres (the grids differ).
    """
    inverse = np.linalg.inv(affine)
    orientation = np.asarray(orientation, dtype=float)
    row_dir, col_dir = orientation[:3], orientation[3:]
    origin = (inverse @ np.r_[np.asarray(position, dtype=float), 1.0])[:3]
    # Moving down one row follows the column direction cosines, one column the row cosines.
    row_step = inverse[:3, :3] @ (col_dir * float(pixel_spacing[0]))
    col_step = inverse[:3, :3] @ (row_dir * float(pixel_spacing[1]))
    steps = []
    for step in (row_step, col_step):
        axis = int(np.argmax(np.abs(step)))
        unit = np.zeros(3)
        unit[axis] = np.sign(step[axis])
        if np.max(np.abs(step - unit)) > 1e-3:
            raise ValueError(f"source image pixels are not canonical voxels (step {step.round(4).tolist()})")
        steps.append((axis, int(unit[axis])))
    rounded = np.rint(origin)
    if np.max(np.abs(origin - rounded)) > tolerance:
        raise ValueError(f"source image origin falls between canonical voxels ({origin.round(3).tolist()})")
    (row_axis, row_sign), (column_axis, column_sign) = steps
    if row_axis == column_axis:
        raise ValueError("source image rows and columns run along one canonical axis")
    return FramePlane(tuple(int(v) for v in rounded), row_axis, row_sign, column_axis, column_sign)  # type: ignore[arg-type]


def _axis_slice(start: int, sign: int, n: int, size: int) -> slice:
    stop = start + sign * (n - 1)
    if not (0 <= start < size and 0 <= stop < size):
        raise ValueError(f"source image runs off the canonical grid (index {start}..{stop} of {size})")
    if sign > 0:
        return slice(start, stop + 1)
    return slice(start, stop - 1 if stop > 0 else None, -1)


def cut_frame(volume: np.ndarray, plane: FramePlane, rows: int, columns: int) -> np.ndarray:
    """The ``(rows, columns)`` image of ``volume`` (canonical grid) on one source plane (a view)."""
    index: list[Any] = [None, None, None]
    index[plane.fixed_axis] = plane.origin[plane.fixed_axis]
    index[plane.row_axis] = _axis_slice(plane.origin[plane.row_axis], plane.row_sign, rows, volume.shape[plane.row_axis])
    index[plane.column_axis] = _axis_slice(
        plane.origin[plane.column_axis], plane.column_sign, columns, volume.shape[plane.column_axis]
    )
    frame = volume[tuple(index)]
    return frame.T if plane.row_axis > plane.column_axis else frame


def frame_planes(source: DicomSource, affine: np.ndarray) -> list[FramePlane]:
    """One :class:`FramePlane` per source slice (order of ``source``)."""
    return [
        frame_plane(affine, source.positions[k], source.orientations[k], source.pixel_spacing)
        for k in range(source.n_slices)
    ]


def source_frames(volume: np.ndarray, source: DicomSource, affine: np.ndarray, *, rows: int, columns: int) -> np.ndarray:
    """``(n_slices, rows, columns)``: ``volume`` (canonical grid) cut along every source image.

    Frame ``k`` lies exactly on the pixels of ``source`` slice ``k``.
    """
    planes = frame_planes(source, affine)
    out = np.empty((len(planes), rows, columns), dtype=volume.dtype)
    for k, plane in enumerate(planes):
        out[k] = cut_frame(volume, plane, rows, columns)
    return out


# --- identification -----------------------------------------------------------------------


def software_versions() -> str:
    return f"pneumolens {__version__}"


def lesion_algorithm(analysis: Analysis) -> tuple[str, str]:
    """Name and version of the lesion method: the model's sidecar name/version, or the density method."""
    method = analysis.lesions.method
    if not method.startswith("model"):
        return f"pneumolens {method} lesion method", __version__
    from pneumolens import models

    weights = analysis.config.lesion_weights or models.LESION_MODEL
    try:
        _, sidecar = models.resolve(weights)
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - identification must not fail the export
        meta = {}
    name = str(meta.get("name") or method.partition(":")[2] or "lesion model")
    return name, str(meta.get("version") or "unknown")


ACQUISITION_EQUIPMENT = "109101"  # DCM "Acquisition Equipment" (CID 7005 Contributing Equipment Purposes)


def drop_source_equipment(ds: Any) -> Any:
    """Remove the source's acquisition equipment that highdicom records in the Contributing
    Equipment Sequence (manufacturer, station name, serial number): only patient and study
    attributes of the source are repeated in pneumolens outputs."""
    items = [
        item
        for item in ds.get("ContributingEquipmentSequence", [])
        if not any(c.CodeValue == ACQUISITION_EQUIPMENT for c in item.get("PurposeOfReferenceCodeSequence", []))
    ]
    if "ContributingEquipmentSequence" in ds:
        ds.ContributingEquipmentSequence = items
    return ds
