"""Assessment on real CT and on reading scenarios inserted into real CT (docs/methods.md, "Assessment").

Runs the whole analysis (default lesion method) on P002 and the two normal chest_ct_volumes, on
each scenario of ``pneumolens.train.insertion.SCENARIOS`` inserted into lung1, lung2 and P002,
and on a pleural effusion alone (15, 30 and 45 mm deep) inserted into each lung of the three scans; prints a Markdown
table and writes ``benchmarks/results_assessment_cases.json``. Also times the assessment stage.

    PYTHONPATH=src python benchmarks/assessment_cases.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from pneumolens.anatomy import segment_lungs
from pneumolens.config import Config
from pneumolens.io import load_scan
from pneumolens.pipeline import analyze
from pneumolens.train.insertion import SCENARIOS, insert_effusion_3d, insert_scenario_3d

#: Deepest layer of the inserted effusions (mm): small, moderate, large.
EFFUSION_DEPTHS_MM = (15.0, 30.0, 45.0)
SCANS = {
    "P002": "covid_ct_md_P002/dicom",
    "lung1": "chest_ct_volumes/lung1_image.nrrd",
    "lung2": "chest_ct_volumes/lung2_image.nrrd",
}


def _row(name: str, expected: str, analysis, truth_effusion_ml: float | None = None) -> dict:
    a = analysis.assessment
    e = a.features["effusion"]
    return {
        "case": name,
        "expected": expected,
        "category": a.category,
        "p_pneumonia": round(a.p_pneumonia, 3),
        "p_viral": round(a.p_viral, 3),
        "bacterial": round(a.type_probabilities["bacterial"], 3),
        "priority": a.priority,
        "lesion_percent": round(a.features["burden"]["lesion_percent"], 2),
        "effusion_ml": round(e["volume_ml"], 1),
        "truth_effusion_ml": None if truth_effusion_ml is None else round(truth_effusion_ml, 1),
        "effusion_error_percent": None if not truth_effusion_ml else round(100 * (e["volume_ml"] - truth_effusion_ml) / truth_effusion_ml, 1),
        "assessment_s": analysis.timings_s.get("assessment"),
    }


def main() -> None:
    from pneumolens.runtime import prepare_for_analyses

    prepare_for_analyses()  # the CLI's process settings, so that times are the CLI's
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--scans", nargs="+", default=list(SCANS), choices=list(SCANS),
                        help="which scans get the inserted cases (P002 itself is always analysed)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results_assessment_cases.json"))
    args = parser.parse_args()
    rows = []
    for name, rel in SCANS.items():
        scan = load_scan(args.data / rel)
        rows.append(_row(name, "typical" if name == "P002" else "negative", analyze(scan, Config())))
        print(rows[-1], flush=True)
        if name not in args.scans:
            continue
        lungs = segment_lungs(scan.volume, scan.spacing)
        for i, (scenario, expected) in enumerate(SCENARIOS.items()):
            ins = insert_scenario_3d(scan.volume, lungs.labels, spacing=scan.spacing,
                                     rng=np.random.default_rng(i), scenario=scenario)
            lesioned = dataclasses.replace(scan, volume=np.clip(np.round(ins.hu), -1024, 3071).astype(np.int16))
            truth = ins.effusion_ml if ins.effusion_ml else None
            # P002's own COVID-19 pneumonia has the typical features, which come first in the
            # RSNA order (Simpson et al. 2020): whatever is added, the scan stays typical.
            expected = "typical" if name == "P002" else expected
            rows.append(_row(f"{name} + {scenario}", expected, analyze(lesioned, Config()), truth))
            print(rows[-1], flush=True)
        for side in (1, 2):
            for k, depth in enumerate(EFFUSION_DEPTHS_MM):
                ins = insert_effusion_3d(scan.volume, lungs.labels == side, spacing=scan.spacing,
                                         rng=np.random.default_rng(10 * side + k), depth_mm=(depth, depth))
                lesioned = dataclasses.replace(scan, volume=np.clip(np.round(ins.hu), -1024, 3071).astype(np.int16))
                rows.append(_row(f"{name} + effusion ({'right' if side == 1 else 'left'}, {depth:.0f} mm)",
                                 "typical" if name == "P002" else "negative", analyze(lesioned, Config()), ins.volume_ml))
                print(rows[-1], flush=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=2) + "\n")
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("-" if r[c] is None else str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
