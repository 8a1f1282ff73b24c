"""Builders for the DICOM output tests: chest phantoms written as DICOM series in several
acquisition geometries, read back into an analysis, and SEG/SR readers that do not use the
writer's own geometry code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from pneumolens.config import Config
from pneumolens.io import load_scan
from pneumolens.io.dicom_source import dicom_source
from pneumolens.io.dicom_write import ORIENTATIONS, write_ct_series
from pneumolens.io.orientation import affine_from_axes, canonical_reorientation, reoriented_affine
from pneumolens.io.scan import CTScan, ScanInfo
from pneumolens.pipeline import analyze
from pneumolens.synthetic import make_chest_phantom

SHAPE = (40, 96, 96)
SPACING = (5.0, 3.0, 3.0)
ORIGIN = (-150.0, -140.0, -400.0)


def phantom():
    return make_chest_phantom(shape=SHAPE, spacing=SPACING, seed=3)


def write_series(folder: Path, acquisition: str) -> list[Path]:
    """The phantom as a CT series: ``axial``, ``reversed-z`` (files from head to feet) or ``coronal``."""
    volume = phantom().volume  # canonical (z, y, x)
    sz, sy, sx = SPACING
    if acquisition == "axial":
        return write_ct_series(volume, folder=folder, spacing=SPACING, origin=ORIGIN, patient_sex="M",
                               patient_age="054Y")
    if acquisition == "reversed-z":
        top = (ORIGIN[0], ORIGIN[1], ORIGIN[2] + sz * (SHAPE[0] - 1))
        return write_ct_series(volume[::-1], folder=folder, spacing=SPACING, origin=top,
                               slice_direction=(0.0, 0.0, -1.0))
    if acquisition == "coronal":
        # rows run along -z (head at the top), columns along +x, slices along +y
        source = volume.transpose(1, 0, 2)[:, ::-1, :]
        top = (ORIGIN[0], ORIGIN[1], ORIGIN[2] + sz * (SHAPE[0] - 1))
        return write_ct_series(source, folder=folder, spacing=(sy, sz, sx), origin=top, orientation="coronal")
    raise ValueError(acquisition)


def read_any_orientation(paths: list[Path]) -> CTScan:
    """A CTScan (with ``info.dicom``) of a single-frame series in any orientation.

    The project reader only accepts axial series; this builds the same objects for a coronal
    one, with the reader's own orientation helpers, so the writers can be checked on it.
    """
    headers = [pydicom.dcmread(p) for p in paths]
    iop = np.asarray(headers[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    headers.sort(key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, dtype=float), normal)))
    source_volume = np.stack([(ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept)).astype(np.int16)
                              for ds in headers])
    positions = [tuple(float(v) for v in ds.ImagePositionPatient) for ds in headers]
    step = float(np.linalg.norm(np.subtract(positions[1], positions[0])))
    pixel = [float(v) for v in headers[0].PixelSpacing]
    source_affine = affine_from_axes(np.asarray(positions[0]), np.stack([normal, iop[3:], iop[:3]]),
                                     (step, pixel[0], pixel[1]))
    reorientation = canonical_reorientation(source_affine)
    volume = np.ascontiguousarray(reorientation.apply(source_volume))
    affine = reoriented_affine(source_affine, reorientation, source_volume.shape)
    spacing = tuple((step, pixel[0], pixel[1])[a] for a in reorientation.permutation)
    for ds in headers:
        del ds.PixelData
    source = dicom_source(headers, frames=[None] * len(headers), positions=positions,
                          orientations=[tuple(iop)] * len(headers), pixel_spacing=pixel)
    z = tuple(float(affine[2, 0] * k + affine[2, 3]) for k in range(volume.shape[0]))
    info = ScanInfo(path=str(paths[0].parent), format="dicom", series_instance_uid=source.series_instance_uid,
                    study_instance_uid=source.study_instance_uid, z_positions_mm=z,
                    source_files=(None,) * volume.shape[0], dicom=source)
    return CTScan(volume=volume, spacing=spacing, affine=affine, info=info,
                  source_axes=(reorientation.permutation, reorientation.flips), source_affine=source_affine)


def analysis_of(folder: Path, acquisition: str):
    paths = write_series(folder, acquisition)
    scan = load_scan(folder) if acquisition != "coronal" else read_any_orientation(paths)
    return analyze(scan, Config(method="density"))


def nifti_values_on_plane(nifti_path: Path, position, orientation, pixel_spacing, rows: int, columns: int) -> np.ndarray:
    """The NIfTI mask values on every pixel of one DICOM image plane (PS3.3 C.7.6.2.1.1),
    found through the NIfTI file's own affine (RAS) -- independent of the writers' geometry code."""
    import nibabel as nib

    image = nib.load(str(nifti_path))
    data = np.asarray(image.dataobj)
    iop = np.asarray(orientation, dtype=float)
    r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    lps = (np.asarray(position, dtype=float)
           + c[..., None] * float(pixel_spacing[1]) * iop[:3]
           + r[..., None] * float(pixel_spacing[0]) * iop[3:])
    ras = lps * np.array([-1.0, -1.0, 1.0])
    ijk = np.c_[ras.reshape(-1, 3), np.ones(rows * columns)] @ np.linalg.inv(image.affine).T
    index = np.rint(ijk[:, :3]).astype(int)
    assert np.allclose(ijk[:, :3], index, atol=1e-3), "DICOM pixels do not sit on NIfTI voxel centres"
    return data[index[:, 0], index[:, 1], index[:, 2]].reshape(rows, columns)


def seg_frames(path: Path) -> list[dict]:
    """Every frame of a SEG file: segment number, position, orientation, referenced source, pixels."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    shared = ds.SharedFunctionalGroupsSequence[0]
    orientation = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    frames = []
    for k, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        derivation = item.DerivationImageSequence[0].SourceImageSequence[0]
        frames.append({
            "segment": int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber),
            "position": [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient],
            "orientation": orientation,
            "source_uid": str(derivation.ReferencedSOPInstanceUID),
            "pixels": pixels[k].astype(bool),
        })
    return frames


def sr_groups(path: Path) -> dict[str, dict]:
    """Measurement groups of a TID 1500 SR by tracking identifier: numbers by concept code,
    units, qualitative evaluations and the referenced segment number."""
    ds = pydicom.dcmread(path)
    groups: dict[str, dict] = {}

    def walk(items, group=None):
        for item in items:
            name = item.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in item else None
            if item.ValueType == "CONTAINER" and name == "125007":  # Measurement Group
                walk(item.ContentSequence, {"numbers": {}, "units": {}, "codes": [], "segment": None})
                continue
            if group is not None:
                if item.ValueType == "TEXT" and name == "112039":  # Tracking Identifier
                    groups[item.TextValue] = group
                elif item.ValueType == "NUM":
                    value = item.MeasuredValueSequence[0]
                    group["numbers"][name] = float(value.NumericValue)
                    group["units"][name] = value.MeasurementUnitsCodeSequence[0].CodeValue
                elif item.ValueType == "CODE":
                    group["codes"].append((name, item.ConceptCodeSequence[0].CodeMeaning))
                elif item.ValueType == "IMAGE" and "ReferencedSegmentNumber" in item.ReferencedSOPSequence[0]:
                    group["segment"] = int(item.ReferencedSOPSequence[0].ReferencedSegmentNumber)
            if "ContentSequence" in item:
                walk(item.ContentSequence, group)

    walk(ds.ContentSequence)
    return groups
