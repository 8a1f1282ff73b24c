"""Time the DICOM outputs (SEG, TID 1500 SR, secondary captures) of a 512x512x150 analysis.

Usage::

    python benchmarks/bench_dicom.py [--method density|model] [--repeats 3] [--json out.json]

The 512x512x150 chest phantom (2 mm slices) is written as a CT DICOM series, read with
``load_scan`` (so the analysis carries its DicomSource) and analysed once. Then, ``--repeats``
times each: ``write_outputs(..., dicom=False)`` and ``write_outputs(..., dicom=True)``; the
difference of the medians is what ``--dicom`` adds to ``pneumolens analyze``. The parts (SEG
build + save, SR, secondary captures given the report's key images) are timed on their own.
Prints a Markdown table row for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _median_time(fn, repeats: int, cpu: dict | None = None, key: str = "") -> float:
    """Median wall-clock seconds of ``fn()``; with ``cpu``, also the median CPU seconds of the
    process (all threads) in ``cpu[key]``, less sensitive to other jobs on a shared machine."""
    times, cpu_times = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - start_cpu)
    if cpu is not None:
        cpu[key] = statistics.median(cpu_times)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    from pneumolens.runtime import prepare_for_analyses

    prepare_for_analyses()  # the CLI's process settings, so that times are the CLI's
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("density", "model"), default="density")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()

    from pneumolens.config import Config
    from pneumolens.export.dicom_encode import save_dicom
    from pneumolens.export.dicom_sc import build_secondary_captures
    from pneumolens.export.dicom_seg import build_seg
    from pneumolens.export.dicom_sr import build_sr
    from pneumolens.export.outputs import write_outputs
    from pneumolens.export.report import key_images
    from pneumolens.io import load_scan
    from pneumolens.io.dicom_write import write_ct_series
    from pneumolens.pipeline import analyze
    from pneumolens.synthetic import make_benchmark_phantom

    with tempfile.TemporaryDirectory(prefix="pneumolens-bench-dicom-") as tmp:
        tmp = Path(tmp)
        phantom = make_benchmark_phantom(150, seed=0, slice_mm=2.0)
        write_ct_series(phantom.volume, spacing=phantom.spacing, folder=tmp / "series")
        analysis = analyze(load_scan(tmp / "series"), Config(method=args.method))
        counter = iter(range(10**6))

        def plain() -> None:
            write_outputs(analysis, tmp / f"plain{next(counter)}")

        def with_dicom() -> None:
            write_outputs(analysis, tmp / f"dicom{next(counter)}", dicom=True)

        with_dicom()  # warm-up: imports of highdicom and its standard tables, once per process
        cpu: dict[str, float] = {}
        plain_s = _median_time(plain, args.repeats, cpu, "plain")
        dicom_s = _median_time(with_dicom, args.repeats, cpu, "dicom")
        seg_holder = {}

        def seg_part() -> None:
            seg_holder["seg"] = build_seg(analysis)
            save_dicom(seg_holder["seg"], tmp / "seg.dcm")

        seg_s = _median_time(seg_part, args.repeats)
        sr_s = _median_time(lambda: save_dicom(build_sr(analysis, seg_holder["seg"]), tmp / "sr.dcm"), args.repeats)
        images = key_images(analysis)
        sc_s = _median_time(lambda: [save_dicom(s, tmp / f"sc{k}.dcm") for k, s in
                                     enumerate(build_secondary_captures(analysis, images=images))], args.repeats)
        n_segments = len(seg_holder["seg"].SegmentSequence)
        n_frames = int(seg_holder["seg"].NumberOfFrames)
        seg_mb = (tmp / "seg.dcm").stat().st_size / 1e6

    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "load_average_start": load_start,
        "load_average": os.getloadavg(),
        "method": args.method,
        "shape": list(analysis.scan.shape),
        "repeats": args.repeats,
        "write_outputs_s": round(plain_s, 2),
        "write_outputs_dicom_s": round(dicom_s, 2),
        "dicom_adds_s": round(dicom_s - plain_s, 2),
        "dicom_adds_cpu_s": round(cpu["dicom"] - cpu["plain"], 2),
        "seg_s": round(seg_s, 2),
        "sr_s": round(sr_s, 2),
        "sc_s": round(sc_s, 2),
        "seg_segments": n_segments,
        "seg_frames": n_frames,
        "seg_mb": round(seg_mb, 1),
    }
    print(json.dumps(result, indent=2))
    print(
        f"| phantom 150x512x512, {args.method} | {result['write_outputs_s']} | {result['write_outputs_dicom_s']} | "
        f"**{result['dicom_adds_s']}** (CPU {result['dicom_adds_cpu_s']}) | SEG {result['seg_s']} ({n_segments} segments, {n_frames} frames, "
        f"{result['seg_mb']} MB), SR {result['sr_s']}, SC {result['sc_s']} | "
        f"{', '.join(f'{v:.1f}' for v in result['load_average'])} |",
        file=sys.stderr,
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
