"""The rule-based assessment on hand-built features: categories, probabilities, reasons, triage."""

import dataclasses
import math

import pytest

from pneumolens.assessment import (
    CO_RADS,
    FINDING_LIKELIHOODS,
    TYPES,
    TriageThresholds,
    assess,
    derive_findings,
    type_probabilities,
)
from pneumolens.features import Burden, Distribution, Effusion, Features, Pattern


def make_features(
    *,
    percent=8.0,
    ggo_share=0.9,
    bilateral=True,
    peripheral=True,
    foci=4,
    lobar=False,
    nodular=False,
    effusion_ml=0.0,
    worst_score=2,
    air=False,
) -> Features:
    lesion_ml = percent * 35.0
    burden = Burden(
        lesion_ml=lesion_ml, lesion_percent=percent, ggo_ml=lesion_ml * ggo_share,
        consolidation_ml=lesion_ml * (1 - ggo_share), right_percent=percent if bilateral else 0.0,
        left_percent=percent, ggo_share=ggo_share if percent else math.nan,
        consolidation_share=1 - ggo_share if percent else math.nan,
        regions={"left_lower": {"lesion_ml": lesion_ml, "lesion_percent": 30.0, "score": worst_score}},
        worst_region="left_lower" if worst_score else None, worst_region_score=worst_score,
    )
    dist = Distribution(
        components=foci + 3, components_over_1ml=foci, largest_component_ml=lesion_ml / max(foci, 1),
        median_component_ml=1.0, peripheral_share=0.7 if peripheral else 0.2, lung_peripheral_share=0.35,
        pleural_contact_share=0.9 if peripheral else 0.1, peripheral_predominant=peripheral,
        outer_third_share=0.6, bilateral=bilateral, lower_zone_share=0.6, upper_zone_share=0.1,
        lower_zone_predominant=True, posterior_share=0.7, posterior_predominant=True,
    )
    pattern = Pattern(
        crazy_paving_fraction=0.1, crazy_paving=False, largest_consolidation_ml=200.0 if lobar else 5.0,
        lobar_fraction=0.5 if lobar else 0.01, lobar=lobar, nodule_count=20 if nodular else 0,
        nodular=nodular, air_bronchogram_ml=1.0 if air else 0.0, air_bronchograms=air,
    )
    effusion = Effusion(effusion_ml > 0, effusion_ml, 0.0, effusion_ml, 20.0 if effusion_ml else 0.0, 10.0)
    return Features(burden, dist, pattern, effusion)


def test_bilateral_peripheral_ground_glass_is_typical_and_viral():
    a = assess(make_features())
    assert a.category == "typical" and a.co_rads == CO_RADS["typical"]
    assert a.p_pneumonia > 0.9 and a.p_viral > 0.8
    assert max(a.type_probabilities, key=a.type_probabilities.get) == "covid19"
    assert sum(a.type_probabilities.values()) == pytest.approx(1.0)
    assert a.reasons[0].startswith("typical:")
    assert any("bilateral peripheral ground-glass opacities, 8.0 % of lung volume" in r for r in a.reasons)
    assert a.priority == "high" and a.alert  # typical + pneumonia: isolation alert by default


def test_lobar_consolidation_with_effusion_is_atypical_and_bacterial():
    a = assess(make_features(ggo_share=0.1, bilateral=False, foci=1, lobar=True, effusion_ml=300.0, air=True))
    assert a.category == "atypical"
    assert a.p_viral < 0.2 and a.type_probabilities["bacterial"] > 0.7
    assert any("pleural effusion, left, 300 mL" in r for r in a.reasons)
    assert any("lobar pattern" in r for r in a.reasons)


def test_scattered_nodules_are_atypical_even_when_small():
    a = assess(make_features(percent=0.3, nodular=True, peripheral=False, foci=0, worst_score=1))
    assert a.category == "atypical" and a.p_pneumonia < 0.5 and a.priority == "routine"


def test_no_lesion_is_negative_and_routine():
    a = assess(make_features(percent=0.0, bilateral=False, peripheral=False, foci=0, worst_score=0))
    assert a.category == "negative" and a.p_pneumonia < 0.05 and a.priority == "routine" and not a.alert


def test_unilateral_central_ground_glass_is_indeterminate():
    a = assess(make_features(bilateral=False, peripheral=False, foci=1))
    assert a.category == "indeterminate"


def test_p_pneumonia_grows_with_burden():
    ps = [assess(make_features(percent=p, foci=0, bilateral=False)).p_pneumonia for p in (0.1, 0.5, 1, 4, 20)]
    assert ps == sorted(ps) and ps[0] < 0.1 and ps[2] == pytest.approx(0.5, abs=0.01) and ps[-1] > 0.95


def test_triage_thresholds_configurable():
    severe = make_features(percent=30.0, worst_score=5)
    a = assess(severe)
    assert a.priority == "urgent" and a.alert and any("30 %" in r for r in a.triage_reasons)
    lenient = TriageThresholds.from_mapping({"urgent_lesion_percent": "50", "urgent_region_score": "6"})
    assert assess(severe, thresholds=lenient).priority == "high"
    no_alert = TriageThresholds.from_mapping({"alert_categories": ""})
    assert not assess(make_features(), thresholds=no_alert).alert
    with pytest.raises(ValueError, match="unknown triage threshold"):
        TriageThresholds.from_mapping({"urgent": "1"})


def test_type_model_is_normalised_and_respects_the_prior():
    findings = derive_findings(make_features())
    flat = type_probabilities(findings)
    covid_rare = type_probabilities(findings, {"covid19": 0.01, "other_viral": 0.33, "bacterial": 0.33, "other": 0.33})
    assert sum(flat.values()) == pytest.approx(1) and sum(covid_rare.values()) == pytest.approx(1)
    assert covid_rare["covid19"] < flat["covid19"]
    assert set(FINDING_LIKELIHOODS["bilateral"]) == set(TYPES)
    with pytest.raises(ValueError):
        type_probabilities(findings, {"covid19": 1.0})


def test_classifier_output_replaces_the_probability_it_was_trained_for():
    out = {"name": "mine", "version": "1.x", "label": "dx in {pneumonia}", "predicts": "p_pneumonia", "probability": 0.12}
    a = assess(make_features(), classifier_output=out)
    assert a.p_pneumonia == 0.12 and a.classifier["name"] == "mine" and "classifier mine" in a.method
    assert a.category == "negative"  # the rules read the classifier's probability
    reported = assess(make_features(), classifier_output={**out, "predicts": "none"})
    assert reported.p_pneumonia > 0.9 and any("cohort classifier mine" in r for r in reported.reasons)


def test_assessment_summary_is_json_able():
    import json

    from pneumolens.analysis import _scalars
    from pneumolens.assessment import assessment_to_dict

    a = assess(make_features(effusion_ml=50.0))
    a = dataclasses.replace(a, effusion_mask=None)
    json.dumps(assessment_to_dict(a), allow_nan=False)
    json.dumps(_scalars(a), default=float)
