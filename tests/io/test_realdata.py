"""Reading the real CT in ``../shared/data`` (skipped when that folder is absent)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from pneumolens.errors import InputError
from pneumolens.io import load_scan

pytestmark = pytest.mark.realdata


def test_covid_ct_md_p002_jpeg_lossless(shared_data: Path):
    folder = shared_data / "covid_ct_md_P002"
    scan = load_scan(folder / "dicom")
    assert scan.shape == (133, 512, 512)
    assert scan.spacing == pytest.approx((2.0, 0.603515625, 0.603515625))
    assert scan.info.transfer_syntax == "1.2.840.10008.1.2.4.70"  # JPEG Lossless SV1
    assert scan.info.manufacturer == "SIEMENS" and scan.info.patient_sex == "F" and scan.info.patient_age == 48
    assert scan.info.n_unreadable_files == 0 and scan.info.skipped == ()
    with open(folder / "labels.csv", newline="") as f:
        expected = {row["file"]: float(row["image_position_z_mm"]) for row in csv.DictReader(f)}
    found = dict(zip(scan.info.source_files, scan.info.z_positions_mm))
    assert found.keys() == expected.keys()
    for name, z in expected.items():
        assert found[name] == pytest.approx(z, abs=1e-3), name
    # The affine reproduces each slice's z, and HU are plausible: air, lung, soft tissue, bone.
    z_from_affine = scan.affine[2, 0] * np.arange(133) + scan.affine[2, 3]
    np.testing.assert_allclose(z_from_affine, scan.info.z_positions_mm, atol=1e-3)
    assert scan.volume.min() >= -1100 and scan.volume.max() > 1000
    assert -950 < np.median(scan.volume[66, 200:320, 130:230]) < -750  # right lung (image left), mid slice


def test_siemens_20_slice_series_jpeg2000_without_uids(shared_data: Path):
    scan = load_scan(shared_data / "dicom_samples" / "siemens_20slice_series")
    assert scan.shape == (20, 512, 512)
    assert scan.info.transfer_syntax == "1.2.840.10008.1.2.4.90"
    assert scan.info.convolution_kernel == "Br38f\\3"
    assert scan.info.contrast_agent == "APPLIED"
    warnings = " ".join(scan.info.warnings)
    assert "no SeriesInstanceUID" in warnings and "contrast agent" in warnings and "covers only 40 mm" in warnings


def test_single_slices_without_modality_are_read_as_ct(shared_data: Path):
    scan = load_scan(shared_data / "dicom_samples" / "single_slices")
    assert scan.shape == (2, 512, 512)
    assert scan.info.modality == "CT"
    assert any("Modality tag is missing" in w for w in scan.info.warnings)


@pytest.mark.parametrize("orientation", ["coronal", "sagittal"])
def test_covid19_ny_sbu_reformats_are_rejected(shared_data: Path, orientation):
    folder = shared_data / "dicom_samples" / "covid19_ny_sbu" / "A002304" / orientation
    with pytest.raises(InputError, match=rf"no axial CT series: only reformats were found \(2 {orientation}\)"):
        load_scan(folder)


def test_covid19_ny_sbu_single_axial_slices_are_rejected(shared_data: Path):
    with pytest.raises(InputError, match="the series has a single slice"):
        load_scan(shared_data / "dicom_samples" / "covid19_ny_sbu")


@pytest.mark.parametrize("name", ["lung1_image.nrrd", "lung2_image.nrrd"])
def test_chest_ct_volumes(shared_data: Path, name):
    scan = load_scan(shared_data / "chest_ct_volumes" / name)
    assert scan.shape[1:] == (512, 512) and scan.shape[0] in (48, 61)
    assert scan.spacing[0] == pytest.approx(5.0)
    assert any("thick slices" in w for w in scan.info.warnings)
    assert scan.volume.min() >= -1100


def test_cip_ct64(shared_data: Path):
    scan = load_scan(shared_data / "cip_10002K_ct64_fissure_atlas" / "ct-64.nrrd")
    assert scan.shape == (79, 64, 64)
    assert scan.spacing == pytest.approx((3.9873, 4.1719, 4.1719), abs=1e-3)
