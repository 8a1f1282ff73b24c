"""Every bad input is rejected by ``load_scan`` with an InputError that says what, where and
what to do, and by ``pneumolens analyze`` with exit code 2 and no output folder."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from io_helpers import SPACING, phantom, write
from pydicom.encaps import encapsulate
from pydicom.uid import generate_uid

from pneumolens.errors import InputError
from pneumolens.io import load_scan

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def _empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _not_dicom(tmp: Path) -> Path:
    folder = tmp / "notdicom"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image\n" * 20)
    (folder / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return folder


def _all_truncated(tmp: Path) -> Path:
    folder = tmp / "truncated"
    paths = write(folder, phantom(n=3))
    for p in paths:
        p.write_bytes(p.read_bytes()[:200])  # cut inside the header
    return folder


def _modality(modality: str, sop_class: str, n: int = 3):
    def build(tmp: Path) -> Path:
        folder = tmp / modality
        write(folder, phantom(n=n), modality=modality, sop_class_uid=sop_class, kernel=None)
        return folder

    return build


def _structured_report(tmp: Path) -> Path:
    folder = tmp / "sr"
    folder.mkdir()
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    pydicom.dcmwrite(folder / "report.dcm", ds, enforce_file_format=True)
    return folder


def _localizer(tmp: Path) -> Path:
    folder = tmp / "scout"
    write(folder, phantom(n=1), image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    return folder


def _single_slice(tmp: Path) -> Path:
    folder = tmp / "one"
    write(folder, phantom(n=1))
    return folder


def _missing_slices(tmp: Path) -> Path:
    folder = tmp / "gap"
    paths = write(folder)
    paths[10].unlink()
    paths[11].unlink()
    return folder


def _duplicate_positions(tmp: Path) -> Path:
    folder = tmp / "dup"
    uid = generate_uid()
    write(folder, series_uid=uid)
    other = phantom(seed=1)[:3]  # same positions as slices 0-2, other pixels
    write(folder, other, series_uid=uid, file_names=[f"B{k}.dcm" for k in range(3)])
    return folder


def _mixed_orientations(tmp: Path) -> Path:
    folder = tmp / "mixed"
    uid = generate_uid()
    write(folder / "ax", series_uid=uid)
    write(folder / "cor", phantom(n=24, rows=24, columns=40), series_uid=uid, orientation="coronal")
    return folder


def _reformats_only(tmp: Path) -> Path:
    folder = tmp / "reformats"
    write(folder / "cor", orientation="coronal", image_type=("DERIVED", "SECONDARY", "REFORMATTED"))
    write(folder / "sag", orientation="sagittal", image_type=("DERIVED", "SECONDARY", "REFORMATTED"))
    return folder


def _tilted_stack(tmp: Path) -> Path:
    folder = tmp / "tilt"
    tilt = np.radians(15.0)
    write(folder, slice_direction=(0.0, -np.sin(tilt), np.cos(tilt)))
    return folder


def _tilt_tag(tmp: Path) -> Path:
    folder = tmp / "tilttag"
    write(folder, extra={"GantryDetectorTilt": 12.0})
    return folder


def _unsupported_transfer_syntax(tmp: Path) -> Path:
    folder = tmp / "mpeg"
    for path in write(folder, phantom(n=3)):
        ds = pydicom.dcmread(path)
        ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])  # an MPEG-2 start code
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
        ds.save_as(path, enforce_file_format=True)
    return folder


def _nifti_without_spacing(tmp: Path) -> Path:
    path = tmp / "nospacing.nii"
    nib.save(nib.Nifti1Image(phantom(), np.eye(4)), path)
    raw = bytearray(path.read_bytes())
    raw[80:92] = struct.pack("<3f", 0.0, 0.0, 0.0)  # pixdim[1:4]; nibabel would refuse to write it
    path.write_bytes(bytes(raw))
    return path


def _nifti_2d(tmp: Path) -> Path:
    path = tmp / "slice.nii.gz"
    nib.save(nib.Nifti1Image(phantom()[0], np.eye(4)), path)
    return path


def _not_hounsfield(tmp: Path) -> Path:
    path = tmp / "raw.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray((phantom() + 1024).astype(np.int16)), str(path))
    return path


def _missing_path(tmp: Path) -> Path:
    return tmp / "does-not-exist"


BAD_INPUTS = [
    ("empty folder", _empty, r"the input is empty"),
    ("non-DICOM files", _not_dicom, r"none of the 2 file\(s\) is a readable DICOM image"),
    ("truncated DICOM only", _all_truncated, r"none of the 3 file\(s\).*3 look like DICOM but are empty or truncated"),
    ("MR", _modality("MR", MR_IMAGE_STORAGE), r"no CT series found: MR \(1 series\)"),
    ("CR", _modality("CR", CR_IMAGE_STORAGE, n=1), r"no CT series found: CR"),
    ("SEG", _modality("SEG", SEG_STORAGE), r"no CT series found: SEG"),
    ("SR", _structured_report, r"no CT series found: SR"),
    ("scout/localizer", _localizer, r"scout/localizer \(ImageType ORIGINAL\\PRIMARY\\LOCALIZER"),
    ("single slice", _single_slice, r"the series has a single slice"),
    ("missing slices", _missing_slices, r"slices are missing: 1 gap\(s\), about 2 slice\(s\)"),
    ("duplicate positions", _duplicate_positions, r"slices share the position .* but hold different images"),
    ("two series mixed", _mixed_orientations, r"two series are mixed under one SeriesInstanceUID.*axial, coronal"),
    ("reformats only", _reformats_only, r"no axial CT series: only reformats were found \(1 coronal, 1 sagittal\)"),
    ("gantry tilt (geometry)", _tilted_stack, r"gantry tilt: the slices are stacked 15\.0 degrees off"),
    ("gantry tilt (tag)", _tilt_tag, r"gantry tilt: GantryDetectorTilt is 12 degrees"),
    ("unsupported transfer syntax", _unsupported_transfer_syntax, r"MPEG2 .*cannot be decoded here.*dcmdjpeg"),
    ("NIfTI without spacing", _nifti_without_spacing, r"voxel spacing is missing or invalid \(\(0\.0, 0\.0, 0\.0\) mm\)"),
    ("NIfTI 2D", _nifti_2d, r"the image has 2 dimension\(s\)"),
    ("not HU", _not_hounsfield, r"do not look like Hounsfield units"),
    ("missing path", _missing_path, r"the input does not exist"),
]


@pytest.mark.parametrize(("case", "build", "match"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_load_scan_rejects(tmp_path, case, build, match):
    path = build(tmp_path)
    with pytest.raises(InputError, match=match) as info:
        load_scan(path)
    error = info.value
    assert error.where, f"{case}: the error must say where"
    assert error.todo, f"{case}: the error must say what to do"
    assert "PNEUMOLENS^TEST" not in str(error) and "PNEUMOLENS-TEST" not in str(error)


@pytest.mark.parametrize(("case", "build", "match"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_cli_rejects(tmp_path, assert_cli_rejects, case, build, match):
    assert_cli_rejects(build(tmp_path), match)


def test_unreadable_files_among_good_ones_are_skipped_and_counted(tmp_path):
    folder = tmp_path / "series"
    volume = phantom()
    paths = write(folder, volume)
    (folder / "zero.dcm").write_bytes(b"")
    # A copy of the first slice cut inside its header, and one cut inside its pixel data
    # (its header reads fine; decoding fails, and its position duplicates slice 0).
    raw = paths[0].read_bytes()
    (folder / "cut_header.dcm").write_bytes(raw[:300])
    (folder / "cut_pixels.dcm").write_bytes(raw[: len(raw) - 500])
    scan = load_scan(folder)
    assert scan.info.n_unreadable_files == 3
    assert {s.item for s in scan.info.skipped} >= {"zero.dcm", "cut_header.dcm", "cut_pixels.dcm"}
    assert any("3 unreadable DICOM file(s) were skipped" in w for w in scan.info.warnings)
    np.testing.assert_array_equal(scan.volume, volume)


@pytest.mark.parametrize("index", [0, 12, 23])
def test_undecodable_slice_of_the_stack_is_refused_by_name(tmp_path, index):
    """Never dropped, not even at an end of the stack (the volume would silently lose it)."""
    folder = tmp_path / "series"
    paths = write(folder)
    raw = paths[index].read_bytes()
    paths[index].write_bytes(raw[: len(raw) - 500])
    with pytest.raises(InputError, match=rf"pixel data of 1 of 24 slice\(s\) cannot be decoded: IM00{index + 1:02d}\.dcm"):
        load_scan(folder)


def test_pixel_identical_duplicates_are_dropped(tmp_path):
    folder = tmp_path / "series"
    volume = phantom()
    paths = write(folder, volume)
    shutil.copy(paths[5], folder / "copy_of_6.dcm")
    scan = load_scan(folder)
    np.testing.assert_array_equal(scan.volume, volume)
    assert any(s.item == "copy_of_6.dcm" and "identical pixels" in s.reason for s in scan.info.skipped)


def test_localizer_beside_the_axial_series_is_skipped(tmp_path):
    write(tmp_path / "scout", phantom(n=1), image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    write(tmp_path / "axial")
    scan = load_scan(tmp_path)
    assert scan.shape == phantom().shape
    assert any("scout/localizer" in s.reason for s in scan.info.skipped)


def test_reformats_beside_the_axial_series_are_skipped(tmp_path):
    write(tmp_path / "cor", orientation="coronal")
    write(tmp_path / "ax")
    scan = load_scan(tmp_path)
    assert scan.shape == phantom().shape
    assert [s.reason for s in scan.info.skipped] == ["the series is a coronal reformat, not axial slices"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"slice_thickness": 5.0}, r"thick slices \(5\.0 mm > 3 mm\)"),
        ({"extra": {"ContrastBolusAgent": "IOMERON 400"}}, r"contrast agent given \(IOMERON 400\)"),
        ({"extra": {"BodyPartExamined": "HEAD"}}, r"BodyPartExamined is HEAD"),
        ({"modality": None}, r"Modality tag is missing; read as CT"),
    ],
)
def test_warnings(tmp_path, options, expected):
    write(tmp_path, **options)
    scan = load_scan(tmp_path)
    assert any(__import__("re").search(expected, w) for w in scan.info.warnings), scan.info.warnings


def test_short_coverage_and_no_contrast_give_exactly_the_coverage_warning(tmp_path):
    write(tmp_path, phantom(n=10), extra={"ContrastBolusAgent": "NONE"})
    scan = load_scan(tmp_path)
    assert scan.info.contrast_agent is None
    assert len(scan.info.warnings) == 1 and "covers only 25 mm" in scan.info.warnings[0]


def test_noisy_scan_is_flagged(tmp_path):
    rng = np.random.default_rng(3)
    volume = np.full((24, 64, 64), -1000, dtype=np.int16)
    volume[:, 4:-4, 4:-4] = -100  # a large fat region
    volume = (volume + np.where(volume > -1000, rng.normal(0, 60, volume.shape), 0)).astype(np.int16)
    write(tmp_path, volume, spacing=(2.5, 0.8, 0.8))
    scan = load_scan(tmp_path)
    assert scan.info.noise_hu == pytest.approx(60, rel=0.15)
    assert any("high image noise" in w for w in scan.info.warnings)


def test_skipped_series_of_another_modality_is_listed(tmp_path):
    write(tmp_path / "mr", modality="MR", sop_class_uid=MR_IMAGE_STORAGE)
    write(tmp_path / "ct")
    scan = load_scan(tmp_path)
    assert any(s.reason == "the series is not CT: modality MR" for s in scan.info.skipped)
    assert scan.shape == (24, 36, 40)
    assert SPACING == scan.spacing
