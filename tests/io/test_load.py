"""``load_scan`` on every supported input form, and the choice among several series."""

from __future__ import annotations

import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from io_helpers import SPACING, assert_same_voxels, phantom, source_world, write
from pydicom.uid import generate_uid

from pneumolens.errors import InputError
from pneumolens.io import load_scan


def test_folder_is_searched_recursively_and_hidden_files_ignored(tmp_path):
    volume = phantom()
    write(tmp_path / "a" / "b", volume)
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01")
    scan = load_scan(tmp_path)
    np.testing.assert_array_equal(scan.volume, volume)
    assert scan.info.source_files[0] == "a/b/IM0001.dcm"
    assert scan.info.skipped == ()
    assert scan.info.format == "dicom" and scan.info.path == str(tmp_path)


def test_list_of_files(tmp_path):
    volume = phantom()
    paths = write(tmp_path, volume)
    scan = load_scan(list(reversed(paths)))
    np.testing.assert_array_equal(scan.volume, volume)
    assert scan.info.path == str(tmp_path.resolve())


def test_zip_is_extracted_safely(tmp_path):
    volume = phantom()
    paths = write(tmp_path / "series", volume)
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in paths:
            zf.write(p, f"study/{p.name}")
        zf.writestr("../escape.dcm", paths[0].read_bytes())  # zip-slip attempt
        zf.writestr("/abs.dcm", paths[0].read_bytes())
    scan = load_scan(archive)
    np.testing.assert_array_equal(scan.volume, volume)
    assert not (tmp_path / "escape.dcm").exists()
    assert {s.item for s in scan.info.skipped if "unsafe zip member" in s.reason} == {"../escape.dcm", "/abs.dcm"}
    assert scan.info.path == str(archive)
    assert scan.info.source_files[0] == "study/IM0001.dcm"


def test_broken_zip(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="the zip file cannot be opened"):
        load_scan(archive)


def test_enhanced_multiframe_ct(tmp_path):
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    volume = phantom(n=8)
    orientation = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    paths = write(tmp_path / "classic", volume, orientation=orientation, kernel="B70f")
    enhanced = LegacyConvertedEnhancedCTImage(
        [pydicom.dcmread(p) for p in paths],
        series_instance_uid=generate_uid(),
        series_number=2,
        sop_instance_uid=generate_uid(),
        instance_number=1,
    )
    path = tmp_path / "enhanced.dcm"
    enhanced.save_as(path)
    scan = load_scan(path)
    assert scan.shape == (8, 36, 40)
    assert_same_voxels(scan, volume, source_world(volume.shape, SPACING, orientation))
    assert scan.info.source_files == ("enhanced.dcm",) * 8
    assert scan.info.convolution_kernel == "B70f"


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"])
@pytest.mark.parametrize(
    "direction",
    [(1, 0, 0, 0, 1, 0, 0, 0, 1), (-1, 0, 0, 0, -1, 0, 0, 0, 1), (1, 0, 0, 0, 0, 1, 0, -1, 0)],
    ids=["LPS", "RAS", "coronal-stored"],
)
def test_volume_formats(tmp_path, suffix, direction):
    array = phantom()  # ITK array order (k, j, i)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((-20.0, 15.0, -300.0))
    image.SetDirection([float(v) for v in direction])
    path = tmp_path / f"ct{suffix}"
    sitk.WriteImage(image, str(path))
    scan = load_scan(path)
    # Every stored voxel is found at its physical position through the canonical affine.
    k, j, i = np.meshgrid(*(np.arange(n) for n in array.shape), indexing="ij")
    index_ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    world = np.asarray(image.GetOrigin()) + (index_ijk * np.asarray(image.GetSpacing())) @ d.T
    assert_same_voxels(scan, array, world)
    assert scan.info.format == {".nii.gz": "nifti", ".nii": "nifti", ".nrrd": "nrrd"}.get(suffix, "mha")
    assert all(f is None for f in scan.info.source_files)
    assert np.all(np.diff(scan.info.z_positions_mm) > 0)


def test_nifti_without_orientation_is_read_with_a_warning(tmp_path):
    path = tmp_path / "noorient.nii"
    image = nib.Nifti1Image(np.transpose(phantom(), (2, 1, 0)), None)  # (x, y, z) storage
    image.header.set_zooms((0.7, 0.8, 2.5))
    nib.save(image, path)
    scan = load_scan(path)
    assert scan.spacing == pytest.approx((2.5, 0.8, 0.7))
    assert any("no orientation" in w for w in scan.info.warnings)


def test_float_volume_is_rounded_and_clipped(tmp_path):
    array = phantom().astype(np.float32) + 0.4
    array[0, 0, 0] = 1e6
    path = tmp_path / "float.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    scan = load_scan(path)
    assert scan.volume.dtype == np.int16
    assert scan.volume[0, 0, 0] == 32767
    np.testing.assert_array_equal(scan.volume[1:], phantom()[1:])


# --- choosing the series --------------------------------------------------------------------


def _series(folder, *, n=24, step=2.5, thickness=None, kernel="B30f", **kwargs):
    write(folder, phantom(n=n), spacing=(step, 0.8, 0.7), slice_thickness=thickness, kernel=kernel, **kwargs)


@pytest.mark.parametrize(
    ("series", "chosen"),
    [
        # more coverage wins over thinner slices
        ({"short_thin": {"n": 24, "step": 1.0}, "long_thick": {"n": 24, "step": 5.0}}, "long_thick"),
        # same coverage: thinner slices win
        ({"thick": {"n": 12, "step": 5.0}, "thin": {"n": 48, "step": 1.25}}, "thin"),
        # same coverage and thickness: the lung kernel wins
        ({"soft": {"kernel": "B30f"}, "lung": {"kernel": "B70f"}}, "lung"),
        ({"std": {"kernel": "STANDARD"}, "lung": {"kernel": "LUNG"}}, "lung"),
        ({"fc07": {"kernel": "FC07"}, "fc51": {"kernel": "FC51"}}, "fc51"),
    ],
)
def test_series_selection(tmp_path, series, chosen):
    for name, options in series.items():
        _series(tmp_path / name, series_description=name, **options)
    scan = load_scan(tmp_path)
    assert scan.info.series_description == chosen
    (skipped,) = scan.info.skipped
    assert skipped.reason.startswith("not selected:")


def test_two_acquisitions_in_one_series_are_split(tmp_path):
    uid = generate_uid()
    write(tmp_path / "a1", phantom(seed=1), series_uid=uid, extra={"AcquisitionNumber": 1})
    write(tmp_path / "a2", phantom(seed=2), series_uid=uid, extra={"AcquisitionNumber": 2})
    scan = load_scan(tmp_path)
    assert scan.shape == phantom().shape
    (skipped,) = scan.info.skipped
    assert "acquisition" in skipped.item and skipped.reason.startswith("not selected")


def test_series_without_uid_are_grouped_by_description(tmp_path):
    for name in ("one", "two"):
        for path in write(tmp_path / name, series_description=name):
            ds = pydicom.dcmread(path)
            del ds.SeriesInstanceUID
            ds.save_as(path)
    scan = load_scan(tmp_path)
    assert scan.info.series_instance_uid is None
    assert len(scan.info.skipped) == 1
    assert any("no SeriesInstanceUID" in w for w in scan.info.warnings)


def test_progress_is_reported(tmp_path):
    write(tmp_path)
    calls = []
    load_scan(tmp_path, progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert ("reading headers", 24, 24) in calls
    assert ("decoding slices", 24, 24) in calls


def test_dicomdir_is_skipped_and_its_images_read(tmp_path):
    from pydicom.fileset import FileSet

    volume = phantom(n=6)
    paths = write(tmp_path / "src", volume)
    fileset = FileSet()
    for p in paths:
        fileset.add(p)
    fileset.write(tmp_path / "media")
    scan = load_scan(tmp_path / "media")
    np.testing.assert_array_equal(scan.volume, volume)
    assert [s.item for s in scan.info.skipped] == ["DICOMDIR"]


def test_no_patient_identifier_is_logged(tmp_path, caplog):
    write(tmp_path, phantom(n=6))
    (tmp_path / "zero.dcm").write_bytes(b"")
    with caplog.at_level("DEBUG"):
        scan = load_scan(tmp_path)
    text = caplog.text + repr(scan.info)
    assert "PNEUMOLENS^TEST" not in text and "PNEUMOLENS-TEST" not in text


def test_in_memory_datasets_read_like_their_files(tmp_path):
    """Datasets received over the network (no files) give the same scan as the files."""
    volume = phantom()
    paths = write(tmp_path / "series", volume)
    datasets = [pydicom.dcmread(p) for p in reversed(paths)]  # any order
    scan = load_scan(datasets)
    np.testing.assert_array_equal(scan.volume, load_scan(tmp_path / "series").volume)
    assert scan.info.path == f"{len(paths)} in-memory DICOM dataset(s)"
    assert scan.info.series_instance_uid == datasets[0].SeriesInstanceUID


def test_in_memory_datasets_get_the_same_checks(tmp_path):
    paths = write(tmp_path / "series", phantom())
    datasets = [pydicom.dcmread(p) for p in paths]
    with pytest.raises(InputError, match="slices are missing"):
        load_scan(datasets[:8] + datasets[12:])


def test_open_scan_keeps_a_zip_readable_until_the_block_ends(tmp_path):
    from pneumolens.io import open_scan

    paths = write(tmp_path / "series", phantom())
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in paths:
            zf.writestr(f"dicom/{p.name}", p.read_bytes())
    with open_scan(archive) as scan:
        root = scan.info.source_root
        first = Path(root) / scan.info.source_files[0]
        assert pydicom.dcmread(first).SOPInstanceUID  # the source file is readable here
    assert not Path(root).exists(), "the extracted files are removed at the end of the block"
    assert load_scan(archive).info.path == str(archive)
