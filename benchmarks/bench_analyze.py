"""Time each analysis stage and peak memory, one fresh process per case.

Usage::

    python benchmarks/bench_analyze.py                      # default cases
    python benchmarks/bench_analyze.py --case p002 --method model

Cases: ``p002`` (bundled real COVID-19 CT, 512x512x133, JPEG-Lossless DICOM),
``phantom150`` and ``phantom300`` (synthetic 512x512x150 / x300 chest phantoms, 2 mm / 1 mm slices).
Prints one Markdown table row per case (to paste into docs/performance.md) and writes JSON
to ``--json`` when given. Peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = ("p002", "phantom150", "phantom300")


def _load_case(case: str):
    if case == "p002":
        from pneumolens.io import load_scan

        return load_scan(REPO / "examples" / "covid_ct_md_P002" / "dicom"), True
    from pneumolens.io.scan import scan_from_array
    from pneumolens.synthetic import make_benchmark_phantom

    n = {"phantom150": 150, "phantom300": 300}[case]
    phantom = make_benchmark_phantom(n, seed=0, slice_mm=300.0 / n)
    return scan_from_array(phantom.volume, phantom.spacing), False


def run_case(case: str, method: str) -> dict:
    """Run one case in this process (called in a child process)."""
    from pneumolens.config import Config
    from pneumolens.pipeline import analyze
    from pneumolens.runtime import prepare_for_analyses

    prepare_for_analyses()  # the process settings of the CLI, so that stage times are the CLI's
    start = time.perf_counter()
    scan, read_is_real = _load_case(case)
    read_s = time.perf_counter() - start
    timings: dict[str, float] = {"read" if read_is_real else "make_phantom": round(read_s, 3)}
    analysis = analyze(scan, Config(method=method), timings=timings)
    analysis_s = sum(v for k, v in timings.items() if k != "make_phantom")
    return {
        "case": case,
        "method": method,
        "shape": list(scan.shape),
        "spacing_mm": [round(s, 3) for s in scan.spacing],
        "timings_s": timings,
        "analysis_total_s": round(analysis_s, 2),
        "lesion_percent": round(analysis.findings.region("lungs").lesion_percent, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, action="append")
    parser.add_argument("--method", choices=("density", "model"), default="density")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.case[0], args.method)))
        return
    results = []
    for case in args.case or CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--case", case, "--method", args.method],
            check=True, capture_output=True, text=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(result)
        t = result["timings_s"]
        stages = ", ".join(f"{k} {v:.2f}" for k, v in t.items())
        print(f"| {case} | {'x'.join(map(str, result['shape']))} | {args.method} | {stages} | "
              f"{result['analysis_total_s']:.1f} | {result['peak_rss_mb']:.0f} |", flush=True)
    if args.json:
        meta = {"machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
                "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
