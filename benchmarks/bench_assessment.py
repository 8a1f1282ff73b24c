"""Time the assessment stage (features + rules) on P002 (also with an inserted pleural effusion)
and on the 512x512x150 benchmark phantom.

The lesion masks come from one analysis each; the assessment (``assess_scan``) is then timed
``--repeat`` times and the median wall and CPU (process) time reported; on a shared machine the
CPU time is the better measure of what the stage costs (single-threaded numpy/scipy). Writes ``benchmarks/results_assessment.json``.

    PYTHONPATH=src python benchmarks/bench_assessment.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from pneumolens.anatomy import segment_lungs
from pneumolens.assessment import assess_scan
from pneumolens.config import Config
from pneumolens.io import load_scan
from pneumolens.io.scan import scan_from_array
from pneumolens.pipeline import analyze
from pneumolens.synthetic import make_chest_phantom
from pneumolens.train.insertion import insert_effusion_3d


def _time(scan, repeat: int) -> dict:
    analysis = analyze(scan, Config())
    runs, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        assess_scan(scan.volume, scan.spacing, analysis.lungs, analysis.lesions)
        runs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {
        "shape": list(scan.shape),
        "spacing_mm": [round(s, 3) for s in scan.spacing],
        "assessment_s_median": round(statistics.median(runs), 3),
        "assessment_s_runs": [round(r, 3) for r in runs],
        "assessment_cpu_s_median": round(statistics.median(cpu), 3),
        "whole_analysis_s": round(sum(v for k, v in analysis.timings_s.items()), 2),
        "stages_s": analysis.timings_s,
    }


def main() -> None:
    from pneumolens.runtime import prepare_for_analyses

    prepare_for_analyses()  # the CLI's process settings, so that times are the CLI's
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results_assessment.json"))
    args = parser.parse_args()
    ph = make_chest_phantom(shape=(150, 512, 512), spacing=(2.0, 0.7, 0.7), seed=0)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the start",
        "phantom_512x512x150": _time(scan_from_array(ph.volume, ph.spacing), args.repeat),
    }
    p002 = args.data / "covid_ct_md_P002" / "dicom"
    if p002.is_dir():
        scan = load_scan(p002)
        results["P002"] = _time(scan, args.repeat)
        # The same with a 45 mm right pleural effusion inserted: the effusion's full-resolution
        # border is only drawn when one is found.
        lungs = segment_lungs(scan.volume, scan.spacing)
        ins = insert_effusion_3d(scan.volume, lungs.labels == 1, spacing=scan.spacing,
                                 rng=np.random.default_rng(12), depth_mm=(45.0, 45.0))
        volume = np.clip(np.round(ins.hu), -1024, 3071).astype(np.int16)
        results["P002_with_effusion"] = _time(dataclasses.replace(scan, volume=volume), args.repeat)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
