"""dciodvfy (dicom3tools) on the DICOM outputs of real chest CT series: every message class, and
whether it is inherited from the source.

Usage::

    python benchmarks/dciodvfy_real.py [--json out.json]

Cases (docs/dicom-outputs.md, "dciodvfy on real series"):

``p002``
    ``examples/covid_ct_md_P002/dicom`` (COVID-CT-MD, 133 slices, a real export with UUIDs as
    Study/Series Instance UIDs and empty SOP Instance UIDs), as ``pneumolens analyze --dicom``
    writes it (lesion model, lobes).
``lung1``
    ``../shared/data/chest_ct_volumes/lung1_image.nrrd`` (real chest CT, 48 slices of 5 mm,
    pyradiomics test data) written as a CT series by ``pneumolens.io.dicom_write`` (valid
    headers), then analysed the same way: real anatomy, nothing to inherit.

The other DICOM series of ``../shared/data`` cannot be analysed (``dicom_samples/
siemens_20slice_series`` is not a chest CT and has empty SOP Class, SOP Instance, Study and
Series UIDs; the rest are single slices). Prints one Markdown row per message class.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "export"))


def _classes(lines: list[str]) -> list[str]:
    """dciodvfy lines with the offending value and character masked, so one rule is one class."""
    return [re.sub(r"= <[^>]*>( - Character invalid for this VR = '.' \(0x..\))?", "= <value>",
                   re.sub(r'UID - "[^"]*"', 'UID - "<value>"', line)) for line in lines]


def run_case(name: str, series: Path, out: Path) -> dict:
    from dicom_helpers import OWN_CONFORMANT_WARNINGS, dciodvfy, not_inherited

    from pneumolens.config import Config
    from pneumolens.export.outputs import write_outputs
    from pneumolens.io import load_scan
    from pneumolens.pipeline import analyze

    analysis = analyze(load_scan(series), Config())
    write_outputs(analysis, out, dicom=True)
    source = analysis.scan.info.dicom
    files = [out / "dicom" / "seg.dcm", out / "dicom" / "sr.dcm", *sorted((out / "dicom" / "sc").glob("*.dcm"))]
    rows: dict[tuple[str, str, str], int] = collections.Counter()
    for path in files:
        errors, warnings = dciodvfy(path)
        ours = set(not_inherited(errors, warnings, source))
        kind = "SC" if path.parent.name == "sc" else path.stem.upper()
        for line, masked in zip(errors + warnings, _classes(errors + warnings)):
            origin = ("ours, conformant" if line in OWN_CONFORMANT_WARNINGS
                      else "ours" if line in ours else "inherited")
            rows[(kind, masked, origin)] += 1
    return {
        "case": name,
        "files": len(files),
        "messages": [{"object": k, "message": m, "origin": o, "count": n} for (k, m, o), n in sorted(rows.items())],
        "ours": sum(n for (_, _, o), n in rows.items() if o == "ours"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from pneumolens.io import load_scan
    from pneumolens.io.dicom_write import write_ct_series

    results = []
    with tempfile.TemporaryDirectory(prefix="pneumolens-dciodvfy-") as tmp:
        tmp = Path(tmp)
        results.append(run_case("p002", REPO / "examples" / "covid_ct_md_P002" / "dicom", tmp / "p002"))
        volume = load_scan(REPO.parent / "shared" / "data" / "chest_ct_volumes" / "lung1_image.nrrd")
        write_ct_series(volume.volume, spacing=volume.spacing, folder=tmp / "lung1_series",
                        origin=tuple(float(v) for v in volume.affine[:3, 3]))
        results.append(run_case("lung1", tmp / "lung1_series", tmp / "lung1"))
    for result in results:
        for row in result["messages"]:
            print(f"| {result['case']} | {row['object']} | {row['message']} | {row['count']} | {row['origin']} |")
        print(f"{result['case']}: {result['files']} files, {result['ours']} messages to fix")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["ours"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
