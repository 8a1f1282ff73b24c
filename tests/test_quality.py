"""Unit tests of the input checks in :mod:`pneumolens.quality`."""

from __future__ import annotations

import numpy as np
import pytest

from pneumolens import quality
from pneumolens.errors import InputError


@pytest.mark.parametrize(
    ("distances", "match"),
    [
        ([0.0], r"single slice"),
        ([0.0, 2.0, 4.0, 10.0, 12.0], r"1 gap\(s\), about 2 slice\(s\).*6\.00 mm between slices 3 and 4"),
        ([0.0, 1.0, 2.0, 3.6, 4.6], r"1 gap\(s\), about 1 slice"),
    ],
)
def test_slice_positions_rejected(distances, match):
    with pytest.raises(InputError, match=match):
        quality.check_slice_positions(np.array(distances), where="series X")


@pytest.mark.parametrize(
    ("distances", "spacing"),
    [([0.0, 2.0], 2.0), ([0.0, 1.25, 2.5, 3.75], 1.25), ([0.0, 1.0, 2.0, 3.4, 4.4], 1.0)],  # 1.4 <= 1.5x
)
def test_slice_positions_accepted(distances, spacing):
    assert quality.check_slice_positions(np.array(distances), where="s") == pytest.approx(spacing)


def test_duplicate_positions_are_grouped():
    groups = quality.duplicate_positions(np.array([0.0, 1.0, 1.0, 1.005, 2.0, 3.0, 3.0]))
    assert groups == [[1, 2, 3], [5, 6]]


@pytest.mark.parametrize(
    ("step", "tilt", "match"),
    [
        ((0.0, 0.0, 1.0), 0.0, None),
        ((0.0, 0.0, -1.0), None, None),
        ((0.0, np.sin(np.radians(0.3)), np.cos(np.radians(0.3))), None, None),  # below 0.5 degrees
        ((0.0, np.sin(np.radians(20)), np.cos(np.radians(20))), None, r"stacked 20\.0 degrees off"),
        ((0.0, 0.0, 1.0), -7.5, r"GantryDetectorTilt is -7\.5 degrees"),
    ],
)
def test_gantry_tilt(step, tilt, match):
    positions = np.array([[0.0, 0.0, 0.0], np.multiply(step, 50.0)])
    normal = np.array([0.0, 0.0, 1.0])
    if match is None:
        quality.check_gantry_tilt(normal, positions, tilt, where="s")
    else:
        with pytest.raises(InputError, match=match):
            quality.check_gantry_tilt(normal, positions, tilt, where="s")


@pytest.mark.parametrize(
    ("modality", "sop_class", "is_ct", "outcome"),
    [
        ("CT", "1.2.840.10008.5.1.4.1.1.2", True, None),
        ("CT", "", False, None),  # SOP class stripped by an anonymiser
        (None, "1.2.840.10008.5.1.4.1.1.2", True, "Modality tag is missing"),
        ("MR", "1.2.840.10008.5.1.4.1.1.4", False, InputError),
        (None, "1.2.840.10008.5.1.4.1.1.7", False, InputError),
        ("CT", "1.2.840.10008.5.1.4.1.1.7", False, InputError),  # secondary capture
    ],
)
def test_check_modality(modality, sop_class, is_ct, outcome):
    if outcome is InputError:
        with pytest.raises(InputError, match="not CT|not a CT image"):
            quality.check_modality(modality, sop_class, is_ct_sop_class=is_ct, where="s")
    else:
        warning = quality.check_modality(modality, sop_class, is_ct_sop_class=is_ct, where="s")
        assert (warning is None) if outcome is None else (outcome in warning)


@pytest.mark.parametrize(
    ("shape", "spacing", "match"),
    [
        ((10, 10), (1.0, 1.0), r"2 dimension"),
        ((10, 10, 10, 3), (1.0, 1.0, 1.0, 1.0), r"4 dimension"),
        ((1, 10, 10), (1.0, 1.0, 1.0), r"single slice"),
        ((10, 10, 10), (0.0, 1.0, 1.0), r"spacing is missing or invalid"),
        ((10, 10, 10), (1.0, float("nan"), 1.0), r"spacing is missing or invalid"),
    ],
)
def test_volume_geometry(shape, spacing, match):
    with pytest.raises(InputError, match=match):
        quality.check_volume_dimensions(shape, where="v.nii")
        quality.check_spacing(spacing, where="v.nii")


def test_hounsfield():
    quality.check_hounsfield(np.array([-1000, 0, 500], dtype=np.int16), where="v")
    with pytest.raises(InputError, match=r"lowest is 0 .*range found 0\.\.4095"):
        quality.check_hounsfield(np.array([0, 24, 4095], dtype=np.int16), where="v")


@pytest.mark.parametrize("sigma", [10.0, 30.0, 80.0])
def test_noise_estimate_recovers_known_noise(sigma):
    rng = np.random.default_rng(0)
    volume = np.full((9, 96, 96), -100.0)
    volume[:, :, :10] = -1000.0  # an edge the estimate must not straddle
    volume += rng.normal(0, sigma, volume.shape)
    assert quality.estimate_noise_hu(volume.astype(np.int16)) == pytest.approx(sigma, rel=0.1)


def test_noise_estimate_needs_fat():
    assert quality.estimate_noise_hu(np.full((5, 40, 40), 40, dtype=np.int16)) is None


def _warnings(**overrides):
    options = {
        "volume": np.zeros((100, 8, 8), dtype=np.int16),
        "spacing": (1.0, 0.7, 0.7),
        "slice_thickness_mm": 1.0,
        "contrast_agent": None,
        "body_part": "CHEST",
        "noise_hu": 12.0,
    }
    return quality.scan_warnings(**{**options, **overrides})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, None),
        ({"slice_thickness_mm": 5.0}, r"thick slices \(5\.0 mm"),
        ({"slice_thickness_mm": None, "spacing": (4.0, 1.0, 1.0), "volume": np.zeros((30, 2, 2))}, r"thick slices \(4\.0"),
        ({"contrast_agent": "OMNIPAQUE"}, r"contrast agent given \(OMNIPAQUE\)"),
        ({"noise_hu": 50.0}, r"high image noise \(50 HU"),
        ({"volume": np.zeros((40, 8, 8), dtype=np.int16)}, r"covers only 40 mm"),
        ({"body_part": "head"}, r"BodyPartExamined is HEAD"),
    ],
)
def test_scan_warnings(overrides, expected):
    warnings = _warnings(**overrides)
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and __import__("re").search(expected, warnings[0]), warnings


@pytest.mark.parametrize(
    "error",
    [
        quality.empty_input("/data/x"),
        quality.no_dicom("/data/x", 3),
        quality.no_axial_series("/data/x", ["coronal", "sagittal", "coronal"]),
        quality.no_ct_series("/data/x", ["MR", "SR", "MR"]),
        quality.duplicate_error(["a", "b"], 12.0, where="s"),
        quality.missing_geometry(["ImagePositionPatient"], where="s"),
    ],
)
def test_errors_say_what_where_and_what_to_do(error):
    assert error.what and error.where and error.todo
    assert "Where:" in str(error) and "What to do:" in str(error)


def test_summaries_count():
    assert "(2 coronal, 1 sagittal)" in quality.no_axial_series("x", ["coronal", "sagittal", "coronal"]).what
    assert "MR (2 series), SR (1 series)" in quality.no_ct_series("x", ["MR", "SR", "MR"]).what
