"""``ScanInfo.dicom``: the source headers and identifiers kept by the DICOM reader."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from io_helpers import phantom, write
from pydicom.uid import generate_uid

from pneumolens.io import load_scan
from pneumolens.io.dicom_source import DicomSource, dicom_source


@pytest.mark.parametrize("slice_direction", [None, (0.0, 0.0, -1.0)], ids=["ascending", "reversed-z"])
def test_headers_follow_the_canonical_slice_order(tmp_path, slice_direction):
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    paths = write(tmp_path, phantom(n=10), study_uid=study, series_uid=series, frame_of_reference_uid=frame,
                  slice_direction=slice_direction, patient_sex="F", patient_age="061Y")
    scan = load_scan(tmp_path)
    source = scan.info.dicom
    assert isinstance(source, DicomSource) and source.n_slices == scan.shape[0] == 10
    by_name = {p.name: pydicom.dcmread(p, stop_before_pixels=True) for p in paths}
    # slice k of the canonical volume came from source_files[k]: same SOP instance and position
    for k, name in enumerate(scan.info.source_files):
        assert source.sop_instance_uids[k] == by_name[name].SOPInstanceUID
        assert source.positions[k] == pytest.approx([float(v) for v in by_name[name].ImagePositionPatient])
        assert source.datasets[k].SOPInstanceUID == by_name[name].SOPInstanceUID
    assert np.all(np.diff([p[2] for p in source.positions]) > 0)  # most inferior first
    assert (source.study_instance_uid, source.series_instance_uid, source.frame_of_reference_uid) == (
        study, series, frame)
    assert source.frame_numbers == (None,) * 10 and not source.is_multiframe
    assert not any("PixelData" in ds for ds in source.datasets)
    assert source.patient["PatientName"] == "PNEUMOLENS^TEST" and source.patient["PatientSex"] == "F"
    assert source.study["StudyDate"] == "20240101" and source.study["PatientAge"] == "061Y"
    assert source.pixel_spacing == pytest.approx((0.8, 0.7))
    # identifiers stay out of the printed scan info (logs, error messages)
    assert "PNEUMOLENS^TEST" not in repr(scan.info) and "PNEUMOLENS-TEST" not in repr(scan.info)


def test_enhanced_multiframe_slices_share_one_dataset(tmp_path):
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    paths = write(tmp_path / "classic", phantom(n=6))
    enhanced = LegacyConvertedEnhancedCTImage(
        [pydicom.dcmread(p) for p in paths], series_instance_uid=generate_uid(), series_number=2,
        sop_instance_uid=generate_uid(), instance_number=1,
    )
    enhanced.save_as(tmp_path / "enhanced.dcm")
    source = load_scan(tmp_path / "enhanced.dcm").info.dicom
    assert source.is_multiframe and sorted(source.frame_numbers) == [1, 2, 3, 4, 5, 6]
    for k, number in enumerate(source.frame_numbers):  # slice k is frame `number` of the file
        item = enhanced.PerFrameFunctionalGroupsSequence[number - 1].PlanePositionSequence[0]
        assert source.positions[k] == pytest.approx([float(v) for v in item.ImagePositionPatient])
    assert np.all(np.diff([p[2] for p in source.positions]) > 0)
    assert len(source.unique_datasets()) == 1
    assert set(source.sop_instance_uids) == {enhanced.SOPInstanceUID}
    assert source.frame_of_reference_uid == enhanced.FrameOfReferenceUID


def test_volume_inputs_have_no_dicom_source(tmp_path):
    import SimpleITK as sitk

    path = tmp_path / "ct.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(phantom()), str(path))
    assert load_scan(path).info.dicom is None


def test_headers_only():
    ds = pydicom.Dataset()
    ds.SOPInstanceUID = generate_uid()
    ds.PixelData = b"\x00\x00"
    with pytest.raises(ValueError, match="headers only"):
        dicom_source([ds], frames=[None], positions=[(0, 0, 0)], orientations=[(1, 0, 0, 0, 1, 0)],
                     pixel_spacing=(1, 1))
