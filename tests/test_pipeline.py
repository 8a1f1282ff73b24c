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
    assert set(result.timings_s) == {"lungs", "lesions", "regions", "findings"}
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


def test_lung_additions_from_the_lesion_stage_join_the_lungs(phantom, monkeypatch):
    """Lung the lesion stage found outside the lung mask is added to the lungs and reported."""
    from pneumolens import pipeline
    from pneumolens.masks import LesionMasks

    def fake_lesions(volume, spacing, lungs, **_):
        add = np.zeros(volume.shape, bool)
        add[10:14, 60:70, 20:24] = True  # beside the right lung, outside its mask
        add &= ~lungs.union
        labels = np.where(add, 2, 0).astype(np.uint8)
        return LesionMasks(labels, labels.astype(np.float32), "model:fake", lung_additions=add)

    monkeypatch.setattr(pipeline, "segment_lesions", fake_lesions)
    result = analyze(scan_from_array(phantom.volume, phantom.spacing), Config(method="model"))
    assert not np.any(result.lesions.any & ~result.lungs.union), "lesions stay inside the (completed) lungs"
    assert result.lesions.any.sum() > 0
    assert any("added to the lungs" in w for w in result.warnings)


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
