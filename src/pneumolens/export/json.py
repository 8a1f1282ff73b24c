"""``analysis.json``: the versioned, documented result of one analysis (docs/analysis-json.md)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumolens import __version__

if TYPE_CHECKING:
    from pneumolens.pipeline import Analysis

#: Bump the minor version when adding keys, the major version when changing or removing them.
SCHEMA_VERSION = "1.0"


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN: empty-region ratios (NaN by our rule) become ``null``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _round(value: float, digits: int = 3) -> float:
    return round(value, digits) if math.isfinite(value) else value


def analysis_to_dict(analysis: Analysis, *, outputs: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON-ready dictionary of ``analysis`` (schema :data:`SCHEMA_VERSION`)."""
    info = analysis.scan.info
    f = analysis.findings
    right, left, both = f.region("right_lung"), f.region("left_lung"), f.region("lungs")
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
            "right_ml": _round(right.volume_ml, 1),
            "left_ml": _round(left.volume_ml, 1),
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
            "right": {"volume_ml": _round(right.lesion_ml, 2), "percent": _round(right.lesion_percent, 3)},
            "left": {"volume_ml": _round(left.lesion_ml, 2), "percent": _round(left.lesion_percent, 3)},
        },
        "regions": [asdict(r) for r in f.regions],
        "slices": [asdict(s) for s in f.slices],
        "warnings": list(analysis.warnings),
        "timings_s": dict(analysis.timings_s),
        "outputs": dict(outputs or {}),
    }
    return _finite_or_none(result)


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
