"""Fingerprint of every real CT series in ``../shared/data`` as read (and, for P002, analysed).

Run before and after a change to the reader and compare the two JSON files: any change in a
volume's voxels, spacing, affine or warnings, or in P002's lung and lesion volumes, shows up.

    PYTHONPATH=src python benchmarks/real_series_fingerprint.py OUT.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from pneumolens.errors import InputError
from pneumolens.io import load_scan

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: Every CT input in the shared data (DICOM series, zip-free folders and volumes).
INPUTS = (
    "covid_ct_md_P002/dicom",
    "dicom_samples/siemens_20slice_series",
    "dicom_samples/single_slices",
    "dicom_samples/covid19_ny_sbu/A002304/coronal",
    "dicom_samples/covid19_ny_sbu/A002304/sagittal",
    "chest_ct_volumes/lung1_image.nrrd",
    "chest_ct_volumes/lung2_image.nrrd",
    "cip_10002K_ct64_fissure_atlas/ct-64.nrrd",
    "cip_copdgene16021S_lobe_slab/crop_ct_2slices.nrrd",
    "cip_copdgene16021S_lobe_slab/ct_2slices.nii.gz",
)


def fingerprint(path: Path) -> dict[str, object]:
    """What the reader makes of ``path``: voxel hash, geometry and warnings, or the error."""
    try:
        scan = load_scan(path)
    except InputError as exc:
        return {"error": exc.what}
    return {
        "shape": list(scan.shape),
        "sha256": hashlib.sha256(np.ascontiguousarray(scan.volume).tobytes()).hexdigest(),
        "spacing": [round(s, 6) for s in scan.spacing],
        "affine": np.round(scan.affine, 6).tolist(),
        "warnings": list(scan.info.warnings),
        "n_skipped": len(scan.info.skipped),
    }


def p002_numbers() -> dict[str, float]:
    """Lung and lesion volumes of P002 with both lesion methods."""
    from pneumolens.config import Config
    from pneumolens.pipeline import analyze

    scan = load_scan(DATA / "covid_ct_md_P002" / "dicom")
    out = {}
    for method in ("density", "model"):
        analysis = analyze(scan, Config(method=method))
        lungs = analysis.findings.region("lungs")
        out[method] = {
            "lungs_ml": round(float(lungs.volume_ml), 3),
            "lesion_ml": round(float(lungs.lesion_ml), 3),
            "lesion_percent": round(float(lungs.lesion_percent), 4),
        }
    return out


def main(out: str) -> None:
    result = {name: fingerprint(DATA / name) for name in INPUTS}
    result["P002 analysis"] = p002_numbers()
    Path(out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result["P002 analysis"]))


if __name__ == "__main__":
    main(sys.argv[1])
