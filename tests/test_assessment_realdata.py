"""Done-when checks of the assessment on real CT (../shared/data), skipped without it.

P002 (COVID-19) is typical with a high p_pneumonia; the two normal volumes are negative; lesions
inserted in 3D into a real normal CT (lung1) get the category a radiologist would give; an
inserted pleural effusion is measured within 20 %. About a minute in all (lung1 is 48 slices).
"""

import numpy as np
import pytest

from pneumolens.config import Config

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _analyze(scan):
    from pneumolens.pipeline import analyze

    return analyze(scan, Config())


@pytest.fixture(scope="module")
def lung1(shared_data):
    from pneumolens.io import load_scan

    return load_scan(shared_data / "chest_ct_volumes" / "lung1_image.nrrd")


def test_p002_is_typical(shared_data):
    from pneumolens.io import load_scan

    a = _analyze(load_scan(shared_data / "covid_ct_md_P002" / "dicom")).assessment
    assert a.category == "typical" and a.p_pneumonia > 0.8 and a.priority in ("high", "urgent")


@pytest.mark.parametrize("name", ["lung1", "lung2"])
def test_normal_volumes_are_negative(shared_data, name):
    from pneumolens.io import load_scan

    a = _analyze(load_scan(shared_data / "chest_ct_volumes" / f"{name}_image.nrrd")).assessment
    assert a.category == "negative" and a.p_pneumonia < 0.2 and a.priority == "routine"


def _with(scan, hu):
    import dataclasses

    return dataclasses.replace(scan, volume=np.clip(np.round(hu), -1024, 3071).astype(np.int16))


@pytest.mark.parametrize(
    ("scenario", "category"),
    [("bilateral_peripheral_ggo", "typical"), ("lobar_consolidation_effusion", "atypical"), ("scattered_nodules", "atypical")],
)
def test_inserted_scenarios_get_the_radiologists_category(lung1, scenario, category):
    from pneumolens.anatomy import segment_lungs
    from pneumolens.train.insertion import insert_scenario_3d

    lungs = segment_lungs(lung1.volume, lung1.spacing)
    ins = insert_scenario_3d(lung1.volume, lungs.labels, spacing=lung1.spacing, rng=np.random.default_rng(0), scenario=scenario)
    a = _analyze(_with(lung1, ins.hu)).assessment
    assert a.category == category
    if scenario == "lobar_consolidation_effusion":
        assert a.p_viral < 0.3 and a.findings["pleural_effusion"]
        assert a.type_probabilities["bacterial"] == max(a.type_probabilities.values())


@pytest.mark.parametrize("seed", [0, 1])
def test_inserted_effusion_volume_within_20_percent(lung1, seed):
    from pneumolens.anatomy import segment_lungs
    from pneumolens.train.insertion import insert_effusion_3d

    lungs = segment_lungs(lung1.volume, lung1.spacing)
    ins = insert_effusion_3d(lung1.volume, lungs.labels == 1 + seed, spacing=lung1.spacing, rng=np.random.default_rng(seed))
    effusion = _analyze(_with(lung1, ins.hu)).assessment.features["effusion"]
    assert effusion["detected"]
    assert effusion["volume_ml"] == pytest.approx(ins.volume_ml, rel=0.2)
