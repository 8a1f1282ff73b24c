"""Service benchmark: last image received -> alert, and throughput with queued studies.

Usage::

    python benchmarks/bench_service.py latency --case p002 --quiet-s 10 --runs 2
    python benchmarks/bench_service.py latency --case phantom150 --release
    python benchmarks/bench_service.py throughput --studies 20 --shape 100,256,256

Starts a real Orthanc (``scripts/orthanc.sh``) and ``pneumolens serve`` (default settings: the
model, workers sized to the machine), sends series with C-STORE (pynetdicom for P002, dcmtk's storescu for the queued studies) and reads the
times the service itself recorded: the reception time of each study's last image
(``last_seen``) and the time of its alert or done event. Prints Markdown rows for
docs/performance.md and writes JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "service"))

from servicekit import (
    events,
    send_files,
    start_orthanc,
    start_server,
    storescu,
    write_config,
)


def _p002_datasets(index: int = 0):
    """P002 with a SOP Instance UID per image (its files have none) and, per copy, new UIDs."""
    import pydicom
    from pydicom.uid import generate_uid

    out = []
    source = REPO.parent / "shared" / "data" / "covid_ct_md_P002" / "dicom"
    for path in sorted(source.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
            setattr(ds, keyword, generate_uid(entropy_srcs=[keyword, str(index), str(ds.get(keyword, ""))]))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(
            entropy_srcs=[str(index), path.name])
        out.append(ds)
    return out


def _phantom_files(folder: Path, shape: tuple[int, int, int], seed: int) -> list[Path]:
    spacing_z = 300.0 / shape[0]
    from pneumolens.io.dicom_write import write_ct_series
    from pneumolens.synthetic import make_chest_phantom

    phantom = make_chest_phantom(shape, (spacing_z, 350.0 / shape[1], 350.0 / shape[2]), seed=seed)
    return write_ct_series(phantom.volume, phantom.spacing, folder)


def _service(tmp: Path, *, quiet_s: float, release: bool, method: str):
    (tmp / "orthanc").mkdir(parents=True)
    orthanc = start_orthanc(tmp / "orthanc")
    extra = f"quiet_s = {quiet_s}" + ("\ncomplete_on_release = true" if release else "")
    config = write_config(tmp, orthanc=orthanc, method=method, workers=0, dicom_extra=extra)
    return orthanc, start_server(config)


def _final_events(server, count: int) -> dict[int, float]:
    """Wait for ``count`` studies to end; their end time (alert, else done) by study id."""
    ended: dict[int, float] = {}
    for kind, data in events(server, after=0, timeout=3600):
        if kind == "alert" or (kind == "study" and data.get("status") in ("done", "failed", "skipped")):
            ended.setdefault(data["id"], data["time"])
        if len(ended) == count and kind == "study":
            return ended
    raise RuntimeError("event stream ended")


def latency(args) -> list[dict]:
    rows = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            orthanc, server = _service(tmp, quiet_s=args.quiet_s, release=args.release, method=args.method)
            try:
                if args.case == "p002":
                    send_files([], server.dicom_port, datasets=_p002_datasets(run))
                else:
                    files = _phantom_files(tmp / "series", (150, 512, 512), seed=run)
                    send_files(files, server.dicom_port)
                ended = _final_events(server, 1)
                (study,) = server.get("/api/studies").json()["studies"]
                detail = server.get(f"/api/studies/{study['id']}").json()
                timings = detail["analysis"]["timings_s"]
                rows.append({"case": args.case, "run": run, "quiet_s": args.quiet_s, "release": args.release,
                             "alert": study["alert"], "last_image_to_alert_s": round(ended[study["id"]] -
                                                                                     study["last_seen"], 2),
                             "analysis_s": round(sum(timings.values()), 2), "timings_s": timings,
                             "status": study["status"]})
                print(rows[-1], flush=True)
            finally:
                server.stop()
                orthanc.stop()
    return rows


def throughput(args) -> list[dict]:
    shape = tuple(int(v) for v in args.shape.split(","))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        series = [_phantom_files(tmp / f"s{i}", shape, seed=i) for i in range(args.studies)]
        orthanc, server = _service(tmp, quiet_s=args.quiet_s, release=True, method=args.method)
        try:
            start = time.time()
            for i in range(len(series)):  # queued one after the other, as fast as C-STORE allows
                storescu(tmp / f"s{i}", server.dicom_port)
            sent = time.time()
            ended = _final_events(server, args.studies)
            studies = server.get("/api/studies").json()["studies"]
            first_seen = min(s["first_seen"] for s in studies)
            last = max(ended.values())
            row = {"studies": args.studies, "shape": shape, "workers": server.get("/health").json()["workers"],
                   "send_s": round(sent - start, 1), "first_image_to_last_result_s": round(last - first_seen, 1),
                   "studies_per_min": round(args.studies / (last - first_seen) * 60, 2),
                   "statuses": sorted({s["status"] for s in studies})}
            print(row, flush=True)
            return [row]
        finally:
            server.stop()
            orthanc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--case", choices=("p002", "phantom150"), default="p002")
    lat.add_argument("--runs", type=int, default=1)
    lat.add_argument("--quiet-s", type=float, default=10.0)
    lat.add_argument("--release", action="store_true", help="complete series at association release")
    thr = sub.add_parser("throughput")
    thr.add_argument("--studies", type=int, default=20)
    thr.add_argument("--shape", default="100,256,256")
    thr.add_argument("--quiet-s", type=float, default=600.0)
    for p in (lat, thr):
        p.add_argument("--method", default="model")
        p.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = latency(args) if args.what == "latency" else throughput(args)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores, {platform.machine()}",
            "load_average": os.getloadavg(), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
