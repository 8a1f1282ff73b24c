"""The Analysis result and its slots: Regions validation, region-driven findings, summary()."""

import dataclasses
import json

import numpy as np
import pytest

from pneumolens.analysis import (
    LOBE_NAMES,
    Analysis,
    FollowUp,
    Regions,
    Scores,
    finite_or_none,
)
from pneumolens.config import Config
from pneumolens.export.json import analysis_to_dict
from pneumolens.findings import quantify
from pneumolens.io.scan import scan_from_array
from pneumolens.masks import LesionMasks, LungMasks


def _toy(shape=(4, 10, 10)):
    volume = np.full(shape, -850, dtype=np.int16)
    lungs = np.zeros(shape, dtype=np.uint8)
    lungs[:, 1:9, 1:5] = 1
    lungs[:, 1:9, 5:9] = 2
    lesions = np.zeros(shape, dtype=np.uint8)
    lesions[1, 2:4, 2:4] = 1  # 4 GGO voxels in the right lung
    lesions[2, 5:7, 6:8] = 2  # 4 consolidation voxels in the left lung
    volume[lesions > 0] = 20
    return volume, LungMasks(lungs, np.zeros(shape, bool)), LesionMasks(lesions, (lesions > 0).astype(np.float32), "density")


def _two_zones(lungs: LungMasks) -> Regions:
    """Upper (z >= 2) and lower (z < 2) halves of the lungs."""
    labels = np.zeros(lungs.labels.shape, np.uint8)
    labels[:2][lungs.union[:2]] = 1
    labels[2:][lungs.union[2:]] = 2
    return Regions(labels=labels, names={1: "lower_zone", 2: "upper_zone"}, kind="zones", method="halves")


def _analysis(regions: Regions | None = None) -> Analysis:
    volume, lungs, lesions = _toy()
    scan = scan_from_array(volume, (1.0, 1.0, 1.0))
    findings = quantify(volume, lungs, lesions, spacing=scan.spacing, z_positions_mm=scan.info.z_positions_mm,
                        regions=regions)
    return Analysis(scan=scan, config=Config(method="density"), lungs=lungs, lesions=lesions, findings=findings,
                    warnings=(), timings_s={"lungs": 1.0}, regions=regions)


def test_findings_take_their_regions_from_the_region_list():
    _volume, lungs, _ = _toy()
    analysis = _analysis(_two_zones(lungs))
    names = [r.name for r in analysis.findings.regions]
    assert names == ["right_lung", "left_lung", "lungs", "lower_zone", "upper_zone"]
    lower, upper = analysis.findings.region("lower_zone"), analysis.findings.region("upper_zone")
    assert lower.ggo_ml == pytest.approx(0.004) and lower.consolidation_ml == 0
    assert upper.consolidation_ml == pytest.approx(0.004) and upper.ggo_ml == 0
    assert lower.volume_ml + upper.volume_ml == pytest.approx(analysis.findings.whole_lungs.volume_ml)
    # analysis.json lists every region, the lobes or zones included
    data = analysis_to_dict(analysis)
    assert [r["name"] for r in data["regions"]] == names
    assert data["lungs"]["right_ml"] == pytest.approx(0.1, abs=0.05)


def test_summary_is_json_numbers_without_arrays():
    _volume, lungs, _ = _toy()
    analysis = dataclasses.replace(
        _analysis(_two_zones(lungs)), scores=Scores(method="zones:halves"), followup=FollowUp(prior="1.2.3")
    )
    summary = analysis.summary()
    text = json.dumps(summary, allow_nan=False)  # raises on NaN or arrays
    assert "ndarray" not in text
    assert summary["lesion_ml"] == pytest.approx(0.008)
    assert summary["regions"]["upper_zone"]["lesion_ml"] == pytest.approx(0.004)
    assert summary["region_kind"] == "zones"
    assert summary["scores"] == {"method": "zones:halves", "ct_severity_0_25": None, "lung_severity_0_20": None,
                                 "po_percent": None, "pho_percent": None, "per_region": {}}
    assert summary["followup"] == {"prior": "1.2.3", "interval_days": None}
    assert summary["assessment"] is None


def test_summary_turns_nan_of_empty_regions_into_null():
    volume, lungs, lesions = _toy()
    empty = LungMasks(np.zeros_like(lungs.labels), lungs.airways)
    scan = scan_from_array(volume, (1.0, 1.0, 1.0))
    findings = quantify(volume, empty, lesions, spacing=scan.spacing, z_positions_mm=scan.info.z_positions_mm)
    analysis = Analysis(scan=scan, config=Config(), lungs=empty, lesions=lesions, findings=findings, warnings=())
    assert analysis.summary()["lesion_percent"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": np.zeros((2, 2, 2), np.int32)}, "uint8"),
        ({"kind": "segments"}, "kind"),
        ({"names": {0: "outside"}}, "names"),
        ({"names": {1: "RUL", 2: "RUL"}}, "names"),
    ],
)
def test_regions_validate_at_construction(kwargs, message):
    base = {"labels": np.zeros((2, 2, 2), np.uint8), "names": dict(LOBE_NAMES), "kind": "lobes", "method": "test"}
    with pytest.raises(ValueError, match=message):
        Regions(**{**base, **kwargs})


def test_regions_mask_by_name():
    labels = np.array([[[0, 1], [4, 5]]], np.uint8)
    regions = Regions(labels=labels, names=dict(LOBE_NAMES), kind="lobes", method="test")
    np.testing.assert_array_equal(regions.mask("LUL"), labels == 4)
    with pytest.raises(KeyError, match="RUL"):
        regions.mask("lingula")


def test_finite_or_none():
    assert finite_or_none({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32(2.5)}) == {
        "a": None, "b": [1.0, None], "c": 2.5,
    }
