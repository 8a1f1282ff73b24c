import numpy as np
import pytest

from pneumolens.config import Config
from pneumolens.errors import InputError
from pneumolens.io.scan import scan_from_array
from pneumolens.pipeline import STAGES, analyze
from pneumolens.synthetic import make_abdomen_phantom, make_chest_phantom
from pneumolens.validate.segmentation import dice


@pytest.fixture(scope="module")
def phantom():
    return make_chest_phantom(seed=3)



def test_analyze_phantom_density(phantom):
    scan = scan_from_array(phantom.volume, phantom.spacing)
    seen = []
    result = analyze(scan, Config(method="density"), progress=lambda stage, i, n: seen.append(stage))
    assert seen == [s for s in STAGES if s != "read"]
    assert set(result.timings_s) == {"checks", "lungs", "lesions", "lung_completion", "regions", "findings",
                                     "assessment"}
    assert result.assessment is not None and 0.0 <= result.assessment.p_pneumonia <= 1.0
    # lungs and lesions agree with the phantom's known masks
    assert dice(result.lungs.union, phantom.lung_labels > 0) > 0.9
    assert dice(result.lesions.any, phantom.lesion_labels > 0) > 0.6
    voxel_ml = float(np.prod(phantom.spacing)) / 1000
    truth_ml = np.count_nonzero(phantom.lesion_labels) * voxel_ml
    assert result.findings.region("lungs").lesion_ml == pytest.approx(truth_ml, rel=0.35)
    assert len(result.findings.slices) == phantom.volume.shape[0]
    # lesions stay inside the lungs
    assert not np.any(result.lesions.any & ~result.lungs.union)


def test_analyze_leaves_input_untouched(phantom):
    scan = scan_from_array(phantom.volume, phantom.spacing)
    before = scan.volume.copy()
    analyze(scan, Config(method="density"))
    np.testing.assert_array_equal(scan.volume, before)


def test_no_lungs_is_an_input_error():
    p = make_abdomen_phantom()
    with pytest.raises(InputError, match="[Nn]o lungs"):
        analyze(scan_from_array(p.volume, p.spacing), Config(method="density"))


def test_lung_completion_runs_between_lesion_evidence_and_lesion_masks(phantom, monkeypatch):
    """Lesion evidence just outside the lungs (dense, touching them broadly) is added to the lungs
    by the anatomy step, the lesions are taken inside the final lungs, and a warning says so."""
    from scipy import ndimage

    from pneumolens import pipeline
    from pneumolens.masks import LesionEvidence

    def fake_evidence(volume, spacing, lungs, **_):
        rim = ndimage.binary_dilation(lungs.right, iterations=2) & ~lungs.union
        rim[: volume.shape[0] // 2] = False
        labels = np.where(rim, 2, 0).astype(np.uint8)
        return LesionEvidence(labels, labels.astype(np.float32) / 2, "model:fake")

    scan = scan_from_array(phantom.volume, phantom.spacing)
    plain = analyze(scan, Config(method="density"))
    monkeypatch.setattr(pipeline, "predict_lesions", fake_evidence)
    result = analyze(scan, Config(method="model"))
    added = result.lungs.union & ~plain.lungs.union
    assert added.sum() > 200
    assert (result.lesions.labels[added] == 2).all(), "the added lung keeps its lesion"
    assert not np.any(result.lesions.any & ~result.lungs.union), "lesions stay inside the (completed) lungs"
    assert (result.lungs.labels[added] == 1).all(), "added voxels take the nearest lung's label"
    assert result.findings.whole_lungs.volume_ml > plain.findings.whole_lungs.volume_ml
    assert any("added to the lungs" in w for w in result.warnings)
    assert list(result.timings_s) == [s for s in STAGES if s != "read"]


def _tilted(affine, spacing_z, *, degrees):
    """The affine with its slice axis tilted in the y-z plane (a gantry tilt), length kept."""
    out = affine.copy()
    a = np.radians(degrees)
    out[:3, 0] = spacing_z * np.array([0.0, np.sin(a), np.cos(a)])
    return out


def _with(scan, **changes):
    import dataclasses

    info_changes = {k: changes.pop(k) for k in list(changes) if k in ("z_positions_mm",)}
    return dataclasses.replace(scan, info=dataclasses.replace(scan.info, **info_changes), **changes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: _with(s, affine=_tilted(s.affine, s.spacing[0], degrees=12.0)), "gantry tilt"),
        (lambda s: _with(s, affine=np.diag([1.0, 1.0, 1.0, 1.0])), "do not match the spacing"),
        (lambda s: _with(s, affine=s.affine[:, [0, 2, 1, 3]] @ np.diag([1, 1, 1, 1.0]), spacing=(s.spacing[0], s.spacing[2], s.spacing[1])),
         "not on the canonical grid"),
        (lambda s: _with(s, z_positions_mm=tuple(z + (20.0 if k > 10 else 0.0) for k, z in enumerate(s.info.z_positions_mm))),
         "slices are missing"),
        (lambda s: _with(s, z_positions_mm=tuple(reversed(s.info.z_positions_mm))), "not strictly increasing"),
        (lambda s: _with(s, volume=(s.volume + 1100).astype(np.int16)), "Hounsfield"),
    ],
)
def test_a_scan_from_an_array_with_bad_geometry_is_refused(phantom, change, message):
    """The checks run in analyze itself: a scan that never went through a reader is checked too."""
    scan = change(scan_from_array(phantom.volume, phantom.spacing))
    with pytest.raises(InputError, match=message):
        analyze(scan, Config(method="density"))


def test_checks_add_the_scan_warnings_of_an_array_scan(phantom):
    thick = scan_from_array(phantom.volume[::2], (phantom.spacing[0] * 2,) + tuple(phantom.spacing[1:]))
    if thick.spacing[0] <= 3.0:
        pytest.skip("phantom slices too thin for the thick-slice warning")
    result = analyze(thick, Config(method="density"))
    assert any("thick slices" in w for w in result.warnings)




def test_analysis_has_lobes_scores_and_region_findings(phantom):
    """Default regions: the five lobes, each quantified, with the 0-25 score and PO/PHO."""
    from pneumolens.analysis import LOBE_NAMES

    scan = scan_from_array(phantom.volume, phantom.spacing)
    result = analyze(scan, Config(method="density"))
    regions, scores = result.regions, result.scores
    assert regions.kind == "lobes" and regions.method.startswith("model:")
    assert np.array_equal(regions.labels > 0, result.lungs.union)
    lobe_ml = sum(result.findings.region(n).volume_ml for n in LOBE_NAMES.values())
    assert lobe_ml == pytest.approx(result.findings.region("lungs").volume_ml)
    lobe_lesion = sum(result.findings.region(n).lesion_ml for n in LOBE_NAMES.values())
    assert lobe_lesion == pytest.approx(result.findings.region("lungs").lesion_ml)
    assert scores.ct_severity_0_25 == sum(scores.per_region[n]["score"] for n in LOBE_NAMES.values())
    assert 1 <= scores.ct_severity_0_25 <= 25  # the phantom has lesions
    assert scores.po_percent == pytest.approx(result.findings.region("lungs").lesion_percent)
    assert 0 < scores.pho_percent < scores.po_percent  # consolidation is part of the lesions


def test_zones_and_no_regions(phantom):
    scan = scan_from_array(phantom.volume, phantom.spacing)
    zones = analyze(scan, Config(method="density", regions="zones"))
    assert zones.regions.kind == "zones" and zones.scores.ct_severity_0_25 is None
    assert zones.findings.region("right_upper").volume_ml > 0
    none = analyze(scan, Config(method="density", regions="none"))
    assert none.regions is None and none.scores.method == "lungs" and none.scores.ct_severity_0_25 is None
