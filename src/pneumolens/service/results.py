"""What the worklist shows of an analysis: key numbers, the alert and the priority.

The alert comes from the analysis's own assessment when it has one (``analysis.json``
``assessment.alert`` / ``assessment.priority``); without one, a study is flagged when lesions
cover at least ``lesion_percent`` % of the lungs (``[alerts] lesion_percent``, default 5 %).
"""

from __future__ import annotations

from typing import Any

from pneumolens.service.store import PRIORITY_ALERT, PRIORITY_ROUTINE


def summarise(data: dict[str, Any], *, lesion_percent: float) -> tuple[dict[str, Any], bool, int]:
    """``(summary, alert, priority)`` from an ``analysis.json`` dictionary; no patient identifiers."""
    lesions, lungs = data["lesions"], data["lungs"]
    summary: dict[str, Any] = {
        "lesion_percent": lesions.get("percent_of_lungs"),
        "lesion_ml": lesions.get("volume_ml"),
        "ggo_ml": lesions.get("ggo_ml"),
        "consolidation_ml": lesions.get("consolidation_ml"),
        "lungs_ml": lungs.get("total_ml"),
        "right_percent": (lesions.get("right") or {}).get("percent"),
        "left_percent": (lesions.get("left") or {}).get("percent"),
        "method": lesions.get("method"),
        "n_slices": data.get("input", {}).get("n_slices"),
        "n_warnings": len(data.get("warnings", [])),
    }
    assessment = data.get("assessment") or {}
    if "alert" in assessment:
        alert = bool(assessment["alert"])
        summary["alert_rule"] = "assessment"
        for key in ("priority", "category", "p_pneumonia"):
            if key in assessment:
                summary[key] = assessment[key]
    else:
        percent = lesions.get("percent_of_lungs")
        alert = percent is not None and percent >= lesion_percent
        summary["alert_rule"] = f"lesions >= {lesion_percent:g} % of lungs"
    return summary, alert, PRIORITY_ALERT if alert else PRIORITY_ROUTINE
