"""``analysis.json``: the versioned, documented result of one analysis (docs/analysis-json.md)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumolens import __version__
from pneumolens.analysis import finite_or_none
from pneumolens.assessment import assessment_to_dict, distribution_to_dict
from pneumolens.masks import LUNG_SIDES

if TYPE_CHECKING:
    from pneumolens.analysis import Analysis

#: Bump the minor version when adding keys, the major version when changing or removing them.
SCHEMA_VERSION = "1.2"


def _round(value: float, digits: int = 3) -> float:
    return round(value, digits) if math.isfinite(value) else value


def analysis_to_dict(analysis: Analysis, *, outputs: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON-ready dictionary of ``analysis`` (schema :data:`SCHEMA_VERSION`)."""
    info = analysis.scan.info
    f = analysis.findings
    both = f.whole_lungs
    per_lung = {side: f.region(f"{side}_lung") for side in LUNG_SIDES.values()}
    result = {
        "schema_version": SCHEMA_VERSION,
        "generator": {"name": "pneumolens", "version": __version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": {
            "path": info.path,
            "format": info.format,
            "series_instance_uid": info.series_instance_uid,
            "study_instance_uid": info.study_instance_uid,
            "n_slices": analysis.scan.shape[0],
            "shape": list(analysis.scan.shape),
            "spacing_mm": [round(s, 4) for s in analysis.scan.spacing],
            "manufacturer": info.manufacturer,
            "manufacturer_model": info.manufacturer_model,
            "convolution_kernel": info.convolution_kernel,
            "slice_thickness_mm": info.slice_thickness_mm,
            "transfer_syntax": info.transfer_syntax,
            "patient_sex": info.patient_sex,
            "patient_age": info.patient_age,
            "contrast_agent": info.contrast_agent,
            "n_unreadable_files": info.n_unreadable_files,
            "skipped": [asdict(s) for s in info.skipped],
        },
        "lungs": {
            **{f"{side}_ml": _round(lung.volume_ml, 1) for side, lung in per_lung.items()},
            "total_ml": _round(both.volume_ml, 1),
            "mean_hu": _round(both.mean_hu, 1),
        },
        "lesions": {
            "method": analysis.lesions.method,
            "volume_ml": _round(both.lesion_ml, 2),
            "percent_of_lungs": _round(both.lesion_percent, 3),
            "ggo_ml": _round(both.ggo_ml, 2),
            "consolidation_ml": _round(both.consolidation_ml, 2),
            "mean_hu": _round(both.lesion_mean_hu, 1),
            **{
                side: {"volume_ml": _round(lung.lesion_ml, 2), "percent": _round(lung.lesion_percent, 3)}
                for side, lung in per_lung.items()
            },
        },
        "assessment": None if analysis.assessment is None else assessment_to_dict(analysis.assessment),
        "distribution": None if analysis.assessment is None else distribution_to_dict(analysis.assessment),
        "regions": [asdict(r) for r in f.regions],
        **region_blocks(analysis),
        "slices": _slices(analysis),
        "warnings": list(analysis.warnings),
        "timings_s": dict(analysis.timings_s),
        "outputs": dict(outputs or {}),
    }
    return finite_or_none(result)


def region_blocks(analysis: Analysis) -> dict[str, Any]:
    """``region_map``, ``lobes`` or ``zones`` (per-region findings, score, confidence) and ``scores``."""
    out: dict[str, Any] = {}
    regions, scores = analysis.regions, analysis.scores
    if regions is not None:
        from pneumolens.anatomy.lobes import LOW_CONFIDENCE

        out["region_map"] = {
            "kind": regions.kind, "method": regions.method,
            "labels": {str(k): v for k, v in sorted(regions.names.items())},
            "low_confidence_below": LOW_CONFIDENCE if regions.method.startswith("model:") else None,
        }
        per = scores.per_region if scores is not None else {}
        block = {}
        for name in (regions.names[k] for k in sorted(regions.names)):
            r = analysis.findings.region(name)
            s = per.get(name, {})
            block[name] = {
                "volume_ml": _round(r.volume_ml, 1), "lesion_ml": _round(r.lesion_ml, 2),
                "lesion_percent": _round(r.lesion_percent, 3), "ggo_ml": _round(r.ggo_ml, 2),
                "consolidation_ml": _round(r.consolidation_ml, 2), "mean_hu": _round(r.mean_hu, 1),
                "lesion_mean_hu": _round(r.lesion_mean_hu, 1),
                "score": s.get("score"), "lss": s.get("lss"),
                "po_percent": _round(s.get("po_percent", float("nan")), 3),
                "pho_percent": _round(s.get("pho_percent", float("nan")), 3),
                "confidence": _round(regions.confidence.get(name, float("nan")), 3),
            }
        out[regions.kind] = block
    if scores is not None:
        out["scores"] = {
            "method": scores.method,
            "ct_severity_0_25": scores.ct_severity_0_25,
            "lung_severity_0_20": scores.lung_severity_0_20,
            "po_percent": _round(scores.po_percent, 3),
            "pho_percent": _round(scores.pho_percent, 3),
            "per_region": {name: {k: (_round(v, 3) if isinstance(v, float) else v) for k, v in d.items()}
                           for name, d in scores.per_region.items()},
        }
    return out


def _slices(analysis: Analysis) -> list[dict[str, Any]]:
    """``slices`` entries; with regions, each gains ``lobes`` (or ``zones``): {name: lesion voxels}."""
    rows = [asdict(s) for s in analysis.findings.slices]
    regions = analysis.regions
    if regions is not None:
        from pneumolens.scores import region_slice_counts

        counts = region_slice_counts(regions.labels, analysis.lesions.labels, regions.names)
        names = [regions.names[k] for k in sorted(regions.names)]
        for row in rows:
            row[regions.kind] = {name: int(counts[name][row["index"]]) for name in names}
    return rows


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
