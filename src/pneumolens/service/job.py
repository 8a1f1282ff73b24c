"""Analyses, run by a worker in its own child process: ``python -m pneumolens.service.job``.

Each worker keeps one child process so that a crash, a memory blow-up or a kill of an analysis
cannot take the service down, and a stuck analysis can be stopped; the child is started once
(imports paid once, not per study) and reads one job spec path per line on stdin. For each it
reads the job's image list, runs :func:`pneumolens.pipeline.analyze_path` (the one analysis
path), writes the outputs atomically into the job's folder, writes ``status.json`` last, and
answers ``done`` on stdout:

``{"ok": true}``, or ``{"ok": false, "input_error": true, "error": "..."}`` for input that cannot
be analysed (skipped, not retried). Any other exit (a crash, a kill) is retried by the worker.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEY_IMAGE = "key_image.png"
STATUS = "status.json"


def run(spec: dict) -> dict:
    """Analyse ``spec["files"]`` into ``spec["out"]``; return the status written to ``status.json``."""
    from pneumolens.config import Config
    from pneumolens.errors import InputError
    from pneumolens.pipeline import analyze_path

    out = Path(spec["out"])
    kwargs = {"threads": int(spec.get("threads", 0))}
    if spec.get("method"):
        kwargs["method"] = spec["method"]
    if spec.get("weights"):
        kwargs["lesion_weights"] = Path(spec["weights"])
    try:
        analysis = analyze_path(list(spec["files"]), Config(**kwargs))
        write_results(analysis, out, dicom=bool(spec.get("dicom", True)))
    except InputError as exc:
        return {"ok": False, "input_error": True, "error": str(exc)}
    return {"ok": True}


def write_results(analysis, out: Path, *, dicom: bool) -> None:
    """The CLI's outputs (analysis.json, masks, report; with ``dicom`` SEG, SR and secondary
    captures under ``dicom/``, as ``pneumolens analyze --dicom``) plus a key image for the worklist."""
    from pneumolens.export.figures import key_slice_indices, render_view
    from pneumolens.export.outputs import write_outputs

    write_outputs(analysis, out, overwrite=True, dicom=dicom)
    labels, lungs = analysis.lesions.labels, analysis.lungs.union
    k = key_slice_indices(labels, lungs, n=1)[0]
    sy, sx = analysis.scan.spacing[1:]
    png = render_view(analysis.scan.volume[k], labels[k], lungs[k], pixel_aspect=sy / sx,
                      title=f"slice {k + 1}/{labels.shape[0]}")
    (out / KEY_IMAGE).write_bytes(png)


def handle(spec_path: Path) -> None:
    """Run the job of ``spec_path`` and write its ``status.json`` beside it (atomically)."""
    spec = json.loads(spec_path.read_text())
    status = run(spec)
    tmp = spec_path.with_name(STATUS + ".tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(spec_path.with_name(STATUS))


def main(argv: list[str] | None = None) -> int:
    """With a spec path: run that job. Without: serve job spec paths read from stdin."""
    argv = sys.argv[1:] if argv is None else argv
    from pneumolens.runtime import prepare_for_analyses

    prepare_for_analyses()
    if argv:
        handle(Path(argv[0]))
        return 0
    import pneumolens.export.outputs
    import pneumolens.pipeline  # noqa: F401 - pay the imports before the first job

    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip():
            handle(Path(line.strip()))
            print("done", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
