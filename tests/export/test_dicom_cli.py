"""``pneumolens analyze --dicom``: the DICOM outputs under OUT/dicom/, and a clear error for volumes."""

from __future__ import annotations

import json

import pydicom
import SimpleITK as sitk
from dicom_helpers import phantom, write_series

from pneumolens.cli.main import main


def test_analyze_dicom_writes_seg_sr_and_captures(tmp_path, capsys):
    write_series(tmp_path / "series", "axial")
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "series"), "--out", str(out), "--method", "density", "--dicom",
                 "--no-progress"]) == 0
    data = json.loads((out / "analysis.json").read_text())
    assert data["outputs"]["dicom_seg"] == "dicom/seg.dcm" and data["outputs"]["dicom_sr"] == "dicom/sr.dcm"
    seg = pydicom.dcmread(out / "dicom" / "seg.dcm", stop_before_pixels=True)
    sr = pydicom.dcmread(out / "dicom" / "sr.dcm", stop_before_pixels=True)
    captures = sorted((out / "dicom" / "sc").glob("SC_*.dcm"))
    assert seg.Modality == "SEG" and sr.Modality == "SR" and len(captures) >= 2
    assert seg.StudyInstanceUID == sr.StudyInstanceUID == data["input"]["study_instance_uid"]
    sc = pydicom.dcmread(captures[0])
    assert sc.BurnedInAnnotation == "YES" and sc.pixel_array.shape[-1] == 3


def test_analyze_dicom_refuses_a_volume_input(tmp_path, capsys):
    p = phantom()
    path = tmp_path / "chest.nrrd"
    image = sitk.GetImageFromArray(p.volume)
    image.SetSpacing(tuple(float(s) for s in p.spacing[::-1]))
    sitk.WriteImage(image, str(path))
    out = tmp_path / "out"
    code = main(["analyze", str(path), "--out", str(out), "--method", "density", "--dicom", "--no-progress"])
    assert code == 2
    assert "--dicom needs a DICOM input" in capsys.readouterr().err
    assert not out.exists()
