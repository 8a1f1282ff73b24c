"""Builders for the DICOM output tests: chest phantoms written as DICOM series in several
acquisition geometries, read back into an analysis, and SEG/SR readers that do not use the
writer's own geometry code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pydicom

from pneumolens.config import Config
from pneumolens.io import load_scan
from pneumolens.io.dicom_source import dicom_source
from pneumolens.io.dicom_write import write_ct_series
from pneumolens.io.orientation import (
    affine_from_axes,
    canonical_reorientation,
    reoriented_affine,
)
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


def nifti_values_on_planes(nifti_path: Path, source) -> np.ndarray:
    """``(n_slices, rows, columns)``: the NIfTI mask values on every pixel of every source image
    plane (PS3.3 C.7.6.2.1.1 geometry), found through the NIfTI file's own affine (RAS) --
    independent of the writers' geometry code."""
    import nibabel as nib

    image = nib.load(str(nifti_path))
    data = np.asarray(image.dataobj)
    inverse = np.linalg.inv(image.affine)
    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    rows, columns = int(source.datasets[0].Rows), int(source.datasets[0].Columns)
    r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    out = np.empty((source.n_slices, rows, columns), dtype=data.dtype)
    for k in range(source.n_slices):
        iop = np.asarray(source.orientations[k], dtype=float)
        # voxel index of pixel (0, 0) and of one step down a column / along a row
        origin = inverse[:3, :3] @ (np.asarray(source.positions[k], dtype=float) * lps_to_ras) + inverse[:3, 3]
        down = inverse[:3, :3] @ (iop[3:] * lps_to_ras) * float(source.pixel_spacing[0])
        across = inverse[:3, :3] @ (iop[:3] * lps_to_ras) * float(source.pixel_spacing[1])
        exact = [np.rint(v) for v in (origin, down, across)]
        assert all(np.allclose(v, e, atol=1e-3) for v, e in zip((origin, down, across), exact)), (
            "DICOM pixels do not sit on NIfTI voxel centres")
        o, d, a = (e.astype(int) for e in exact)
        index = [o[axis] + r * d[axis] + c * a[axis] for axis in range(3)]
        out[k] = data[index[0], index[1], index[2]]
    return out


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


def require_executable(name: str, *, why: str) -> str:
    """``tests/conftest.py``'s :func:`require_executable`, loaded by path: ``from conftest import``
    picks whichever ``conftest`` module was imported last (tests/io has one too)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("pneumolens_tests_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.require_executable(name, why=why)


# --- dciodvfy (Debian dicom3tools) ------------------------------------------------------------

#: A valid UID (DICOM PS3.5 9.1): digits and dots, no leading zero in a component, <= 64 chars.
VALID_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
#: Warnings about pneumolens' own, conformant choices: the private coding scheme 99PNMLNS
#: (declared in the SR's Coding Scheme Identification Sequence, PS3.3 C.12.1.1.2, but not in
#: dciodvfy's list of defined terms).
OWN_CONFORMANT_WARNINGS = ("Warning - Unrecognized defined term <99PNMLNS> for value 1 of attribute <Coding Scheme Designator>",)


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """The ``Error`` and ``Warning`` lines dciodvfy reports on one file."""
    program = require_executable("dciodvfy", why="DICOM conformance of SEG, SR and SC (Debian dicom3tools)")
    result = subprocess.run([program, str(path)], capture_output=True, text=True, timeout=120, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return [x for x in lines if x.startswith("Error")], [x for x in lines if x.startswith("Warning")]


def invalid_source_uids(source) -> set[str]:
    """UIDs the outputs must repeat (Study Instance UID) or reference (Series and SOP Instance
    UIDs of the source images) that are invalid in the source itself; ``""`` for an empty one."""
    values = {str(source.study_instance_uid or ""), str(source.series_instance_uid or "")}
    values |= {str(uid or "") for uid in source.sop_instance_uids}
    return {v for v in values if not (VALID_UID.match(v) and len(v) <= 64)}


_ILLEGAL_ROOT = re.compile(r'^Error - Illegal root for UID - "([^"]*)"')
_INVALID_UI = re.compile(r"^Error - Value invalid for this VR - \(0x[0-9a-f]{4},0x[0-9a-f]{4}\) UI .* UI \[\d+\] = <([^>]*)>")
_EMPTY_REFERENCE = "Error - Empty attribute (no value) Type 1 Required Element=<ReferencedSOPInstanceUID>"
_VR_SUMMARY = "Error - Dicom dataset contains invalid data values for Value Representations"
_DICOMDIR = re.compile(r"^Warning - Missing attribute or value that would be needed to build DICOMDIR - (Study Date|Study ID|Study Time)$")


def not_inherited(errors: list[str], warnings: list[str], source) -> list[str]:
    """The dciodvfy messages that are not inherited from the source series.

    Inherited (docs/dicom-outputs.md, "dciodvfy"): an invalid or empty UID of the source that
    the output must repeat or reference (PS3.5 9.1 on UIDs; Type 1 Referenced SOP Instance
    UID, PS3.3 10.8, where the source image has none), dciodvfy's summary line of those, and
    the DICOMDIR warning for a study date, time or ID the source leaves empty. Everything
    else is pneumolens' to fix, except :data:`OWN_CONFORMANT_WARNINGS`.
    """
    bad = invalid_source_uids(source)
    empty_study = {name for name, keyword in (("Study Date", "StudyDate"), ("Study Time", "StudyTime"),
                                              ("Study ID", "StudyID")) if not source.study.get(keyword)}
    ours = []
    inherited_vr = False
    for line in errors:
        match = _ILLEGAL_ROOT.match(line) or _INVALID_UI.match(line)
        if match and match.group(1) in bad:
            inherited_vr = True
        elif not (line.startswith(_EMPTY_REFERENCE) and "" in bad) and line != _VR_SUMMARY:
            ours.append(line)
    if _VR_SUMMARY in errors and not inherited_vr:
        ours.append(_VR_SUMMARY)
    for line in warnings:
        match = _DICOMDIR.match(line)
        if line not in OWN_CONFORMANT_WARNINGS and not (match and match.group(1) in empty_study):
            ours.append(line)
    return ours
