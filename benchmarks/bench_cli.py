"""End-to-end time of the CLI: ``pneumolens analyze`` from process start to exit.

What a user waits for is the whole command: interpreter start, imports, reading and decoding
the DICOM series, the analysis stages, and writing every output. Each run is a fresh process
(``python -m pneumolens analyze INPUT --out DIR --overwrite --no-progress -v``), timed from
``subprocess`` start to exit; the stage timings come from the ``analysis.json`` it writes and
the output-writing time from its ``outputs written in`` log line.

Usage::

    python benchmarks/make_series_150.py --out /tmp/pneumolens-bench/p002_150
    python benchmarks/bench_cli.py examples/covid_ct_md_P002/dicom /tmp/pneumolens-bench/p002_150 \\
        --repeats 3 [--method density] [--uncompressed-masks] [--json results.json]

Prints one Markdown row per input (median of the repeats, and the fastest, with its CPU seconds:
user + system time of the process, which does not grow with other jobs' load) for
``docs/performance.md``, with the load average before and after the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fresh_memory_cost(huge_pages: str = "1") -> float:
    """Seconds per GB to touch fresh memory in a new process, measured right after a run: how
    expensive this (virtual) machine's page faults are at the moment. With numpy's default
    (``huge_pages="1"``: arrays marked for transparent huge pages) it varied 40-fold within minutes
    on the 2-core VM of docs/performance.md (0.15-7 s/GB): synchronous compaction, which the CLI
    now avoids (``pneumolens.runtime.avoid_huge_page_stalls``); ``"0"`` measures ordinary pages."""
    code = ("import numpy as np, time; t = time.perf_counter(); a = np.ones(2**28 // 8); "
            "print(4 * (time.perf_counter() - t))")
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": huge_pages}
    return round(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True, env=env).stdout), 3)


def run_once(source: Path, out: Path, extra: list[str]) -> dict:
    """One fresh ``pneumolens analyze`` process; wall time, stage timings, writing time."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "pneumolens", "-v", "analyze", str(source), "--out", str(out),
           "--overwrite", "--no-progress", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    system = after.ru_stime - before.ru_stime
    faults = after.ru_minflt - before.ru_minflt
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    written = re.search(r"outputs written in ([0-9.]+) s", done.stderr)
    data = json.loads((out / "analysis.json").read_text())
    return {
        "wall_s": wall,
        "cpu_s": cpu,  # user + system seconds of the process: what the work costs, whatever the load
        "system_s": system,  # kernel time: mostly first touches of fresh memory (page faults)
        "minor_faults": faults,
        "fresh_memory_s_per_gb": fresh_memory_cost(),
        "fresh_memory_small_pages_s_per_gb": fresh_memory_cost("0"),
        "max_rss_mb": after.ru_maxrss / 1024,
        "stages_s": data["timings_s"],
        "write_s": float(written.group(1)) if written else float("nan"),
        "shape": data["input"]["shape"],
        "lesion_ml": data["lesions"]["volume_ml"],
        "method": data["lesions"]["method"],
    }


def bench(source: Path, *, repeats: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="pneumolens-bench-") as tmp:
        runs = [run_once(source, Path(tmp) / "out", extra) for _ in range(repeats)]
    walls = [r["wall_s"] for r in runs]
    best = runs[walls.index(min(walls))]
    stages = best["stages_s"]
    return {
        "input": str(source),
        "shape": best["shape"],
        "method": best["method"],
        "lesion_ml": best["lesion_ml"],
        "repeats": repeats,
        "wall_median_s": round(statistics.median(walls), 2),
        "wall_min_s": round(min(walls), 2),
        "cpu_s_of_fastest": round(best["cpu_s"], 2),
        "write_s_of_fastest": round(best["write_s"], 2),
        "stages_s_of_fastest": stages,
        "outside_stages_s_of_fastest": round(best["wall_s"] - sum(stages.values()) - best["write_s"], 2),
        "runs": [{"wall_s": round(r["wall_s"], 2), "cpu_s": round(r["cpu_s"], 2), "system_s": round(r["system_s"], 2),
                  "minor_faults": r["minor_faults"], "fresh_memory_s_per_gb": r["fresh_memory_s_per_gb"],
                  "fresh_memory_small_pages_s_per_gb": r["fresh_memory_small_pages_s_per_gb"]}
                 for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", choices=("model", "density"), default=None)
    parser.add_argument("--uncompressed-masks", action="store_true")
    parser.add_argument("--weights", type=Path, default=None, help="another lesion model (ONNX + sidecar)")
    parser.add_argument("--no-tta", action="store_true", help="lesion model without flip test-time augmentation")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    extra = (["--method", args.method] if args.method else []) + (
        ["--uncompressed-masks"] if args.uncompressed_masks else []) + (
        ["--weights", str(args.weights)] if args.weights else []) + (["--no-tta"] if args.no_tta else [])
    load_before = os.getloadavg()
    results = [bench(p, repeats=args.repeats, extra=extra) for p in args.inputs]
    report = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                   f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "options": extra,
        "results": results,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print("| input | shape | method | total (median / min) | CPU s | read | lungs | lesions | completion | findings | writing | start-up + rest |")
    for r in results:
        s = r["stages_s_of_fastest"]
        print(f"| {Path(r['input']).name} | {'x'.join(map(str, r['shape']))} | {r['method']} | "
              f"{r['wall_median_s']:.1f} / {r['wall_min_s']:.1f} s | {r['cpu_s_of_fastest']:.1f} | {s.get('read', 0):.1f} | {s.get('lungs', 0):.1f} | "
              f"{s.get('lesions', 0):.1f} | {s.get('lung_completion', 0):.1f} | {s.get('findings', 0):.1f} | "
              f"{r['write_s_of_fastest']:.1f} | {r['outside_stages_s_of_fastest']:.1f} |")


if __name__ == "__main__":
    main()
