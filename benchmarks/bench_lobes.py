"""What the lobes add to an analysis: time with ``regions="lobes"`` against ``regions="none"``.

    python benchmarks/bench_lobes.py [--case phantom150|p002] [--repeats 3] [--method density|model]

Runs the same scan through :func:`pneumolens.pipeline.analyze` with and without lobes (repeats
alternate, best of ``--repeats`` per setting), and times writing the outputs
(:func:`pneumolens.export.write_outputs`: JSON with per-slice lobe counts, ``lobes.nii.gz``,
report with the lobe images) both ways. Prints JSON; the load average is recorded because the
machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _scan(case: str):
    if case == "p002":
        from pneumolens.io import load_scan

        return load_scan(REPO / "examples" / "covid_ct_md_P002" / "dicom")
    from pneumolens.io.scan import scan_from_array
    from pneumolens.synthetic import make_benchmark_phantom

    phantom = make_benchmark_phantom(150, seed=0, slice_mm=2.0)
    return scan_from_array(phantom.volume, phantom.spacing)


def main() -> None:
    from pneumolens.runtime import prepare_for_analyses

    prepare_for_analyses()  # the CLI's process settings, so that times are the CLI's
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", default="phantom150", choices=("phantom150", "p002"))
    p.add_argument("--method", default="density", choices=("density", "model"))
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    from pneumolens.config import Config
    from pneumolens.export.outputs import write_outputs
    from pneumolens.pipeline import analyze

    scan = _scan(args.case)
    runs: dict[str, list[dict]] = {"none": [], "lobes": []}
    for _ in range(args.repeats):
        for regions in ("none", "lobes"):
            timings: dict[str, float] = {}
            start = time.perf_counter()
            analysis = analyze(scan, Config(method=args.method, regions=regions), timings=timings)
            total = time.perf_counter() - start
            with tempfile.TemporaryDirectory() as tmp:
                w0 = time.perf_counter()
                write_outputs(analysis, Path(tmp) / "out")
                write_s = time.perf_counter() - w0
            runs[regions].append({"timings_s": timings, "analysis_s": round(total, 2), "write_s": round(write_s, 2)})
    best = {k: min(v, key=lambda r: r["analysis_s"] + r["write_s"]) for k, v in runs.items()}
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        "case": args.case, "shape": list(scan.shape), "spacing_mm": [round(s, 3) for s in scan.spacing],
        "method": args.method, "repeats": args.repeats,
        "best": best,
        "regions_stage_s": [r["timings_s"].get("regions") for r in runs["lobes"]],
        "lobes_add_s": round(best["lobes"]["analysis_s"] + best["lobes"]["write_s"]
                             - best["none"]["analysis_s"] - best["none"]["write_s"], 2),
        "lobes_add_analysis_only_s": round(best["lobes"]["analysis_s"] - best["none"]["analysis_s"], 2),
        "runs": runs,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
