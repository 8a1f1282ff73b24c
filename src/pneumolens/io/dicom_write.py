"""Write a volume as a classic CT Image Storage series (pydicom 3).

Used by the tests to build every kind of input (and bad input) the reader must handle, and as
the base for sending derived series to a PACS. The files are valid CT Image Storage objects
(DICOM PS3.3 A.3: Patient, Study, Series, Frame of Reference, Equipment, General Image,
Image Plane, Image Pixel, CT Image and SOP Common modules), with synthetic identifiers only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pneumolens.io.dicom_headers import CT_IMAGE_STORAGE

#: ImageOrientationPatient of the named orientations (row cosines, then column cosines).
ORIENTATIONS: dict[str, tuple[float, ...]] = {
    "axial": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "coronal": (1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
    "sagittal": (0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
}


def write_ct_series(
    volume_hu: np.ndarray,
    spacing: Sequence[float],
    folder: str | Path,
    *,
    orientation: str | Sequence[float] = "axial",
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    slice_direction: Sequence[float] | None = None,
    transfer_syntax: str = "1.2.840.10008.1.2.1",
    modality: str | None = "CT",
    sop_class_uid: str = CT_IMAGE_STORAGE,
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    instance_numbers: Sequence[int] | None = None,
    file_names: Sequence[str] | None = None,
    kernel: str | None = "B30f",
    slice_thickness: float | None = None,
    series_number: int = 1,
    series_description: str = "pneumolens test series",
    patient_sex: str | None = "O",
    patient_age: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> list[Path]:
    """Write ``volume_hu`` as one DICOM file per slice; return the paths in slice order.

    Parameters
    ----------
    volume_hu
        ``(N, R, C)`` HU: N slices of R rows and C columns. Slice ``k`` is placed at
        ``origin + k * spacing[0] * slice_direction``; within a slice, row ``r`` and column
        ``c`` at ``+ r * spacing[1] * column_cosines + c * spacing[2] * row_cosines``.
    spacing
        ``(slice step, row spacing, column spacing)`` in mm.
    folder
        Created if needed.
    orientation
        ``"axial"``, ``"coronal"``, ``"sagittal"`` or six ImageOrientationPatient values.
    origin
        ImagePositionPatient of slice 0 (LPS mm).
    slice_direction
        Unit LPS vector along which slices are stacked; default the image-plane normal
        (row x column cosines). Anything else makes a gantry-tilted stack.
    transfer_syntax
        Transfer syntax UID; compressed ones are encoded with pydicom's encoders
        (RLE Lossless, JPEG-LS, JPEG 2000 lossless with the installed plug-ins).
    modality
        Modality tag; ``None`` leaves it out.
    rescale_slope, rescale_intercept
        Stored value = (HU - intercept) / slope, rounded; signed storage is used when a
        stored value would be negative.
    instance_numbers
        InstanceNumber per slice (default 1..N) -- to test that the reader ignores them.
    file_names
        File name per slice (default ``IM0001.dcm``...).
    extra
        More attributes by keyword (e.g. ``{"GantryDetectorTilt": 15.0}``).
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    volume = np.asarray(volume_hu)
    if volume.ndim != 3:
        raise ValueError(f"volume_hu must be (N, rows, columns), got shape {volume.shape}")
    n, rows, columns = volume.shape
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    iop = np.asarray(ORIENTATIONS[orientation] if isinstance(orientation, str) else orientation, dtype=float)
    if iop.shape != (6,):
        raise ValueError(f"orientation must name one of {sorted(ORIENTATIONS)} or give 6 values, got {orientation!r}")
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    step_dir = normal if slice_direction is None else np.asarray(slice_direction, dtype=float)
    step_dir = step_dir / np.linalg.norm(step_dir)
    stored = np.rint((volume.astype(np.float64) - rescale_intercept) / rescale_slope)
    signed = bool(stored.min() < 0)
    limits = np.iinfo(np.int16 if signed else np.uint16)
    if stored.min() < limits.min or stored.max() > limits.max:
        raise ValueError("HU values do not fit 16-bit storage with this slope/intercept")
    stored = stored.astype(np.int16 if signed else np.uint16)

    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_of_reference_uid = frame_of_reference_uid or generate_uid()
    numbers = list(instance_numbers) if instance_numbers is not None else list(range(1, n + 1))
    names = list(file_names) if file_names is not None else [f"IM{k + 1:04d}.dcm" for k in range(n)]
    if len(numbers) != n or len(names) != n:
        raise ValueError("instance_numbers and file_names need one entry per slice")
    ts = UID(transfer_syntax)

    paths = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class_uid
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1")
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class_uid
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = "PNEUMOLENS^TEST"
        ds.PatientID = "PNEUMOLENS-TEST"
        ds.PatientBirthDate = ""
        if patient_sex is not None:
            ds.PatientSex = patient_sex
        if patient_age is not None:
            ds.PatientAge = patient_age
        ds.StudyInstanceUID = study_uid
        ds.StudyDate = "20240101"
        ds.StudyTime = "120000"
        ds.StudyID = "1"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = series_description
        if modality is not None:
            ds.Modality = modality
        ds.FrameOfReferenceUID = frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.Manufacturer = "pneumolens"
        ds.ManufacturerModelName = "write_ct_series"
        ds.InstanceNumber = numbers[k]
        ds.ImageType = list(image_type)
        ds.AcquisitionNumber = 1
        position = np.asarray(origin, dtype=float) + k * float(spacing[0]) * step_dir
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in iop]
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[2])]
        ds.SliceThickness = _ds(slice_thickness if slice_thickness is not None else spacing[0])
        ds.SliceLocation = _ds(position[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = rows
        ds.Columns = columns
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleIntercept = _ds(rescale_intercept)
        ds.RescaleSlope = _ds(rescale_slope)
        ds.RescaleType = "HU"
        ds.KVP = "120"
        if kernel is not None:
            ds.ConvolutionKernel = kernel
        for keyword, value in (extra or {}).items():
            setattr(ds, keyword, value)
        ds.PixelData = stored[k].tobytes()
        if ts.is_compressed:
            ds.compress(ts, stored[k], generate_instance_uid=False)
        else:
            ds.file_meta.TransferSyntaxUID = ts
        path = folder / names[k]
        path.parent.mkdir(parents=True, exist_ok=True)
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def _ds(value: float) -> str:
    """A Decimal String of at most 16 characters."""
    text = f"{float(value):.10g}"
    return text if len(text) <= 16 else f"{float(value):.6g}"
