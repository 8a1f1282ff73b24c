"""Scan-level assessment: P(pneumonia), viral vs non-viral, the RSNA-style category, reasons, triage.

No labelled cohort exists to train on here, so the built-in scorer is a transparent model whose
form and priors come from the radiology literature (every number is in ``docs/methods.md``,
"Assessment", with its source):

* ``p_pneumonia``: a logistic function of the lesion burden (log2 of the % of lung volume) plus
  fixed log-odds for airspace signs (lobar consolidation, air bronchograms, multifocality).
* type probabilities (COVID-19 / other viral / bacterial / other, conditional on pneumonia):
  naive Bayes over binary findings with the finding frequencies per type reported by Bai et al.
  (Radiology 2020, doi 10.1148/radiol.2020200823), Salehi et al. (AJR 2020, doi
  10.2214/AJR.20.23034) and, where no table exists, set from the reviews of Koo et al.
  (RadioGraphics 2018, doi 10.1148/rg.2018170048) and Nambu et al. (World J Radiol 2014,
  doi 10.4329/wjr.v6.i10.779); ``p_viral`` = COVID-19 + other viral.
* ``category``: the RSNA expert consensus (Simpson et al., Radiol Cardiothorac Imaging 2020,
  doi 10.1148/ryct.2020200152) decision order: typical features first, then indeterminate, then
  atypical, else negative; ``co_rads`` maps it to CO-RADS (Prokop et al., Radiology 2020,
  doi 10.1148/radiol.2020201473).
* triage ``priority`` (routine / high / urgent) and ``alert`` from :class:`TriageThresholds`.

A cohort classifier trained with ``pneumolens train classifier`` (:mod:`pneumolens.classifier`)
can replace ``p_pneumonia`` or ``p_viral`` with a probability learned on the user's own cases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from pneumolens.analysis import Assessment, Regions, finite_or_none
from pneumolens.features import Features, compute_features
from pneumolens.masks import LesionMasks, LungMasks

#: Name and version of the built-in rule set (written into ``assessment.method``).
SCORER_NAME = "pneumolens-rsna-rules"
SCORER_VERSION = "1.0"

TYPES = ("covid19", "other_viral", "bacterial", "other")
CATEGORIES = ("typical", "indeterminate", "atypical", "negative")
#: CO-RADS for each RSNA category (Prokop et al. 2020: typical ~ 5, indeterminate 3,
#: atypical 2, negative 1; CO-RADS 4 "suspicious" has no RSNA counterpart).
CO_RADS = {"typical": 5, "indeterminate": 3, "atypical": 2, "negative": 1}

# --------------------------------------------------------------------------- p(pneumonia)
#: Lesion burden (% of lung volume) at which p_pneumonia = 0.5 without other signs, and the
#: log-odds gained per doubling. Set so that the false-positive lesion volume the shipped model
#: finds in normal lungs (0.13-0.21 %, docs/methods.md) gives p < 0.1 and the smallest focal
#: pneumonia a reader reports (a few tens of mL, ~1 % of a 3.5 L lung) gives about 0.5.
BURDEN_MIDPOINT_PERCENT = 1.0
LOG_ODDS_PER_DOUBLING = 1.2
#: Extra log-odds for airspace signs.
LOG_ODDS_LOBAR = 1.5
LOG_ODDS_AIR_BRONCHOGRAMS = 0.5
LOG_ODDS_MULTIFOCAL_GGO = 0.5

# --------------------------------------------------------------------------- types
#: Prior of each type given pneumonia: no local prevalence is assumed (set yours).
DEFAULT_TYPE_PRIOR = {"covid19": 0.25, "other_viral": 0.25, "bacterial": 0.25, "other": 0.25}

#: P(finding present | type). Sources per row in docs/methods.md ("Assessment").
FINDING_LIKELIHOODS: dict[str, dict[str, float]] = {
    #                         covid19 other_viral bacterial other
    "ggo_predominant": dict(zip(TYPES, (0.91, 0.68, 0.25, 0.60))),
    "peripheral": dict(zip(TYPES, (0.80, 0.57, 0.45, 0.40))),
    "bilateral": dict(zip(TYPES, (0.88, 0.70, 0.35, 0.60))),
    "lobar_consolidation": dict(zip(TYPES, (0.03, 0.05, 0.40, 0.10))),
    "nodular": dict(zip(TYPES, (0.05, 0.20, 0.20, 0.25))),
    "pleural_effusion": dict(zip(TYPES, (0.05, 0.39, 0.40, 0.25))),
    "air_bronchograms": dict(zip(TYPES, (0.14, 0.23, 0.60, 0.30))),
}

#: Feature thresholds of the findings above.
GGO_PREDOMINANT_SHARE = 0.6
CONSOLIDATION_PREDOMINANT_SHARE = 0.6


@dataclass(frozen=True)
class TriageThresholds:
    """Documented, configurable triage thresholds (defaults and sources in docs/methods.md).

    ``urgent`` when pneumonia is likely (``p_pneumonia >= pneumonia_p``) and the lesions cover at
    least ``urgent_lesion_percent`` of the lungs (27 %: well-aerated lung below 73 % predicted ICU
    admission or death in Colombi et al., Radiology 2020) or any region scores at least
    ``urgent_region_score`` (0-5 per lobe/zone, Pan et al. 2020: > 50 % involved), or a
    pleural effusion of at least ``urgent_effusion_ml``. ``high`` when pneumonia is likely, a
    region scores at least ``high_region_score``, or an effusion of at least ``high_effusion_ml``
    is seen. ``routine`` otherwise. ``alert`` (for a worklist banner / infection control) when
    the priority is in ``alert_priorities`` or the category in ``alert_categories`` with
    pneumonia likely.
    """

    pneumonia_p: float = 0.5
    urgent_lesion_percent: float = 27.0
    urgent_region_score: int = 4
    urgent_effusion_ml: float = 1000.0
    high_region_score: int = 3
    high_effusion_ml: float = 200.0
    alert_priorities: tuple[str, ...] = ("urgent",)
    alert_categories: tuple[str, ...] = ("typical",)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> TriageThresholds:
        """Thresholds from ``{name: value}`` (e.g. parsed ``--triage k=v,...``); unknown names are an error."""
        known = {f.name: f for f in fields(cls)}
        out = {}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown triage threshold {name!r}; known: {sorted(known)}")
            default = getattr(cls(), name)
            if isinstance(default, tuple):
                out[name] = tuple(str(value).replace("+", ",").split(",")) if value else ()
            else:
                out[name] = type(default)(value)
        return cls(**out)


@dataclass(frozen=True)
class Findings:
    """The binary findings the type model and the category rules read (derived from features)."""

    ggo_predominant: bool
    consolidation_predominant: bool
    peripheral: bool
    bilateral: bool
    multifocal: bool
    lobar_consolidation: bool
    nodular: bool
    pleural_effusion: bool
    air_bronchograms: bool
    lower_zone: bool
    posterior: bool
    crazy_paving: bool

    def as_dict(self) -> dict[str, bool]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def derive_findings(features: Features) -> Findings:
    """Binary findings from the measured features (definitions in :mod:`pneumolens.features`)."""
    b, d, p, e = features.burden, features.distribution, features.pattern, features.effusion
    has_lesion = b.lesion_ml > 0
    ggo = has_lesion and _finite(b.ggo_share) >= GGO_PREDOMINANT_SHARE
    return Findings(
        ggo_predominant=bool(ggo),
        consolidation_predominant=bool(has_lesion and _finite(b.consolidation_share) >= CONSOLIDATION_PREDOMINANT_SHARE),
        peripheral=bool(d.peripheral_predominant),
        bilateral=bool(d.bilateral),
        multifocal=bool(d.components_over_1ml >= 2),
        lobar_consolidation=bool(p.lobar),
        nodular=bool(p.nodular),
        pleural_effusion=bool(e.detected),
        air_bronchograms=bool(p.air_bronchograms),
        lower_zone=bool(d.lower_zone_predominant),
        posterior=bool(d.posterior_predominant),
        crazy_paving=bool(p.crazy_paving),
    )


def _finite(x: float) -> float:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else 0.0


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def pneumonia_probability(features: Features, findings: Findings) -> tuple[float, list[str]]:
    """``p_pneumonia`` and the terms that moved it (for the reasons)."""
    pct = max(_finite(features.burden.lesion_percent), 0.01)
    z = LOG_ODDS_PER_DOUBLING * math.log2(pct / BURDEN_MIDPOINT_PERCENT)
    terms = []
    if findings.lobar_consolidation:
        z += LOG_ODDS_LOBAR
        terms.append("lobar consolidation")
    if findings.air_bronchograms:
        z += LOG_ODDS_AIR_BRONCHOGRAMS
        terms.append("air bronchograms")
    if findings.ggo_predominant and findings.multifocal:
        z += LOG_ODDS_MULTIFOCAL_GGO
        terms.append("multifocal ground glass")
    return _sigmoid(z), terms


def type_probabilities(findings: Findings, prior: Mapping[str, float] | None = None) -> dict[str, float]:
    """P(type | findings, pneumonia) by naive Bayes over :data:`FINDING_LIKELIHOODS`.

    The findings are treated as independent given the type (the naive-Bayes assumption; they are
    not, so the posteriors are more extreme than they should be: read them as a ranking).
    """
    prior = dict(DEFAULT_TYPE_PRIOR if prior is None else prior)
    if set(prior) != set(TYPES) or any(v < 0 for v in prior.values()) or sum(prior.values()) <= 0:
        raise ValueError(f"type prior must give a non-negative weight to each of {TYPES}, got {prior}")
    observed = findings.as_dict()
    log_post = {}
    for t in TYPES:
        lp = math.log(max(prior[t], 1e-12))
        for name, table in FINDING_LIKELIHOODS.items():
            q = table[t]
            lp += math.log(q if observed[name] else 1.0 - q)
        log_post[t] = lp
    top = max(log_post.values())
    weights = {t: math.exp(v - top) for t, v in log_post.items()}
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


def rsna_category(findings: Findings, p_pneumonia: float, *, pneumonia_p: float = 0.5) -> tuple[str, str]:
    """RSNA consensus category and the rule that gave it (Simpson et al. 2020), in decision order.

    * typical: ground glass "with or without consolidation" (Simpson et al. 2020, Table 1:
      consolidation not predominant), peripheral, and bilateral or multifocal, without lobar
      consolidation or a nodular pattern;
    * indeterminate: pneumonia likely without typical features and without lobar
      consolidation or a nodular pattern (e.g. unilateral, central or diffuse ground glass);
    * atypical: lobar consolidation, a nodular pattern, consolidation without ground glass, or
      a pleural effusion, when no typical feature is present;
    * negative: none of the above (no CT feature of pneumonia).
    """
    pneumonia = p_pneumonia >= pneumonia_p
    focal = findings.lobar_consolidation or findings.nodular
    ground_glass = not findings.consolidation_predominant  # GGO with or without consolidation
    if pneumonia and ground_glass and findings.peripheral and (findings.bilateral or findings.multifocal) and not focal:
        spread = "bilateral" if findings.bilateral else "multifocal"
        return "typical", f"peripheral ground-glass opacities, {spread} (RSNA typical appearance)"
    if findings.lobar_consolidation:
        return "atypical", "isolated lobar or segmental consolidation (RSNA atypical appearance)"
    if findings.nodular:
        return "atypical", "discrete small nodules (RSNA atypical appearance)"
    if pneumonia and findings.consolidation_predominant:
        return "atypical", "consolidation without ground glass (RSNA atypical appearance)"
    if pneumonia and findings.pleural_effusion and not findings.ggo_predominant:
        return "atypical", "opacities with pleural effusion (RSNA atypical appearance)"
    if pneumonia:
        return "indeterminate", "ground-glass or mixed opacities without a typical distribution (RSNA indeterminate)"
    return "negative", "no CT feature of pneumonia (RSNA negative)"


def _side_words(features: Features) -> str:
    b = features.burden
    if features.distribution.bilateral:
        return "bilateral"
    right, left = _finite(b.right_percent), _finite(b.left_percent)
    return "right-sided" if right > left else "left-sided"


def describe(features: Features, findings: Findings) -> list[str]:
    """The findings in a radiologist's words, with the numbers (most important first)."""
    b, d, p, e = features.burden, features.distribution, features.pattern, features.effusion
    out = []
    if b.lesion_ml > 0:
        if findings.ggo_predominant:
            kind = "ground-glass opacities"
        elif findings.consolidation_predominant:
            kind = "consolidation"
        else:
            kind = "mixed ground-glass opacities and consolidation"
        where = [_side_words(features)]
        if findings.peripheral:
            where.append("peripheral")
        head = f"{' '.join(where)} {kind}, {b.lesion_percent:.1f} % of lung volume ({b.lesion_ml:.0f} mL"
        head += f"; ground glass {100 * _finite(b.ggo_share):.0f} %)"
        zones = []
        if findings.lower_zone:
            zones.append(f"lower-zone predominant ({100 * d.lower_zone_share:.0f} % in the lower thirds)")
        if findings.posterior:
            zones.append(f"posterior predominant ({100 * d.posterior_share:.0f} %)")
        out.append(", ".join([head, *zones]))
        out.append(
            f"{d.components_over_1ml} {'focus' if d.components_over_1ml == 1 else 'foci'} of at least 1 mL "
            f"({d.components} components), largest "
            f"{d.largest_component_ml:.0f} mL; {100 * _finite(d.peripheral_share):.0f} % of the lesion volume "
            f"within 10 mm of the costal pleura (lung itself: {100 * _finite(d.lung_peripheral_share):.0f} %)"
        )
        if b.worst_region:
            out.append(f"most involved {b.region_kind[:-1]}: {b.worst_region.replace('_', ' ')} "
                       f"(score {b.worst_region_score}/5)")
    if findings.lobar_consolidation:
        out.append(f"confluent consolidation of {p.largest_consolidation_ml:.0f} mL filling "
                   f"{100 * p.lobar_fraction:.0f} % of its lung zone (lobar pattern)")
    if findings.nodular:
        out.append(f"nodular pattern: {p.nodule_count} small round nodules (3-15 mm)")
    if findings.air_bronchograms:
        out.append(f"air bronchograms in the consolidation ({p.air_bronchogram_ml:.1f} mL of enclosed air)")
    if findings.crazy_paving:
        out.append(f"reticulation over the ground glass (crazy paving; {100 * p.crazy_paving_fraction:.0f} % of it)")
    if e.detected:
        side = "bilateral" if e.right_ml > 0 and e.left_ml > 0 else ("right" if e.right_ml > 0 else "left")
        out.append(f"pleural effusion, {side}, {e.volume_ml:.0f} mL (depth up to {e.max_depth_mm:.0f} mm)")
    if not out:
        out.append("no lung opacity measured")
    return out


def triage(
    features: Features, p_pneumonia: float, category: str, thresholds: TriageThresholds
) -> tuple[str, bool, list[str]]:
    """Priority (routine / high / urgent), alert, and why (see :class:`TriageThresholds`)."""
    b, e = features.burden, features.effusion
    pneumonia = p_pneumonia >= thresholds.pneumonia_p
    why = []
    priority = "routine"
    urgent = []
    if pneumonia and _finite(b.lesion_percent) >= thresholds.urgent_lesion_percent:
        urgent.append(f"lesions cover {b.lesion_percent:.0f} % of the lungs (>= {thresholds.urgent_lesion_percent:g} %)")
    if pneumonia and b.worst_region_score >= thresholds.urgent_region_score:
        urgent.append(f"{b.worst_region} scores {b.worst_region_score}/5 (>= {thresholds.urgent_region_score})")
    if e.volume_ml >= thresholds.urgent_effusion_ml:
        urgent.append(f"pleural effusion {e.volume_ml:.0f} mL (>= {thresholds.urgent_effusion_ml:g} mL)")
    if urgent:
        priority, why = "urgent", urgent
    else:
        high = []
        if pneumonia:
            high.append(f"pneumonia likely (p = {p_pneumonia:.2f} >= {thresholds.pneumonia_p:g})")
        if b.worst_region_score >= thresholds.high_region_score:
            high.append(f"{b.worst_region} scores {b.worst_region_score}/5 (>= {thresholds.high_region_score})")
        if e.volume_ml >= thresholds.high_effusion_ml:
            high.append(f"pleural effusion {e.volume_ml:.0f} mL (>= {thresholds.high_effusion_ml:g} mL)")
        if high:
            priority, why = "high", high
    alert = priority in thresholds.alert_priorities or (pneumonia and category in thresholds.alert_categories)
    if pneumonia and category in thresholds.alert_categories:
        why = [*why, f"{category} appearance of viral (COVID-19) pneumonia: consider isolation"]
    return priority, bool(alert), why


def assess(
    features: Features,
    *,
    thresholds: TriageThresholds | None = None,
    type_prior: Mapping[str, float] | None = None,
    classifier_output: Mapping[str, object] | None = None,
    effusion_mask: np.ndarray | None = None,
) -> Assessment:
    """The assessment of one analysis from its :class:`~pneumolens.features.Features`.

    ``classifier_output`` (from :func:`pneumolens.classifier.apply_classifier`) replaces
    ``p_pneumonia`` or ``p_viral`` when its ``predicts`` says so; the rules still give the
    category and the reasons.
    """
    thresholds = TriageThresholds() if thresholds is None else thresholds
    findings = derive_findings(features)
    p_pneumonia, terms = pneumonia_probability(features, findings)
    types = type_probabilities(findings, type_prior)
    p_viral = types["covid19"] + types["other_viral"]
    method = f"{SCORER_NAME} {SCORER_VERSION}"
    notes = []
    if classifier_output is not None:
        target = classifier_output.get("predicts")
        prob = float(classifier_output["probability"])  # type: ignore[arg-type]
        if target == "p_pneumonia":
            p_pneumonia = prob
        elif target == "p_viral":
            p_viral = prob
        notes.append(
            f"cohort classifier {classifier_output['name']} {classifier_output['version']}: "
            f"P({classifier_output['label']}) = {prob:.2f}"
        )
        method += f" + classifier {classifier_output['name']} {classifier_output['version']}"
    category, rule = rsna_category(findings, p_pneumonia, pneumonia_p=thresholds.pneumonia_p)
    priority, alert, why = triage(features, p_pneumonia, category, thresholds)
    reasons = [f"{category}: {rule}", *describe(features, findings)]
    if terms:
        reasons.append("p(pneumonia) raised by " + ", ".join(terms))
    reasons.extend(notes)
    return Assessment(
        method=method,
        p_pneumonia=float(p_pneumonia),
        p_viral=float(p_viral),
        type_probabilities={t: float(v) for t, v in types.items()},
        category=category,
        co_rads=CO_RADS[category],
        reasons=tuple(reasons),
        priority=priority,
        alert=alert,
        triage_reasons=tuple(why),
        findings=findings.as_dict(),
        features=features.to_dict(),
        feature_vector=features.vector(),
        classifier=None if classifier_output is None else dict(classifier_output),
        effusion_mask=effusion_mask,
    )


def assess_scan(
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    lungs: LungMasks,
    lesions: LesionMasks,
    *,
    lung_additions: np.ndarray | None = None,
    regions: Regions | None = None,
    thresholds: TriageThresholds | None = None,
    classifier: str | Path | None = None,
) -> Assessment:
    """Features (:func:`pneumolens.features.compute_features`) and :func:`assess` of one scan.

    ``lung_additions``: voxels lung completion added to the lungs (where an effusion may hide
    as "consolidation"); ``regions`` (lobes, else zones) give the per-region burden and the
    worst region score;
    ``classifier`` is a file written by ``pneumolens train classifier``.
    """
    kwargs = {}
    if regions is not None:
        kwargs = {"regions": regions.labels, "region_names": regions.names, "region_kind": regions.kind}
    features = compute_features(
        volume, lungs.labels, lesions.labels, spacing, lung_additions=lung_additions, **kwargs
    )
    output = None
    if classifier is not None:
        from pneumolens.classifier import apply_classifier, load_classifier

        output = apply_classifier(load_classifier(classifier), features.vector())
    return assess(features, thresholds=thresholds, classifier_output=output, effusion_mask=features.effusion.mask)


def assessment_to_dict(assessment: Assessment) -> dict[str, Any]:
    """The ``assessment`` block of ``analysis.json`` (docs/analysis-json.md), without arrays."""
    out = {
        "method": assessment.method,
        "p_pneumonia": assessment.p_pneumonia,
        "p_viral": assessment.p_viral,
        "type_probabilities": dict(assessment.type_probabilities),
        "category": assessment.category,
        "co_rads": assessment.co_rads,
        "reasons": list(assessment.reasons),
        "priority": assessment.priority,
        "alert": assessment.alert,
        "triage_reasons": list(assessment.triage_reasons),
        "findings": dict(assessment.findings),
        "features": {k: v for k, v in assessment.features.items() if k != "distribution"},
        "feature_vector": dict(assessment.feature_vector),
        "classifier": None if assessment.classifier is None else dict(assessment.classifier),
    }
    return finite_or_none(out)


def distribution_to_dict(assessment: Assessment) -> dict[str, Any]:
    """The ``distribution`` block of ``analysis.json``: where the lesions are."""
    return finite_or_none(dict(assessment.features.get("distribution", {})))


__all__ = [
    "CATEGORIES",
    "CO_RADS",
    "DEFAULT_TYPE_PRIOR",
    "FINDING_LIKELIHOODS",
    "TYPES",
    "Findings",
    "TriageThresholds",
    "assess",
    "assess_scan",
    "assessment_to_dict",
    "derive_findings",
    "describe",
    "distribution_to_dict",
    "pneumonia_probability",
    "rsna_category",
    "triage",
    "type_probabilities",
]
