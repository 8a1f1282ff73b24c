"""Agreement of per-slice lesion findings with radiologists' slice labels on COVID-CT-MD P002.

Runs the one analysis path on the bundled P002 series and compares, per slice, "lesion found"
(lesion volume on the slice >= ``--min-ml``) with ``labels.csv`` (infection yes/no, thoracic
radiologists), matched by DICOM file name. Also reports the slice-level AUC of the per-slice
lesion volume (pROC conventions, :mod:`pneumolens.validate`).

    python benchmarks/p002_slice_agreement.py --method density
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from pneumolens.validate.roc import roc_curve

REPO = Path(__file__).resolve().parents[1]
P002 = REPO / "examples" / "covid_ct_md_P002"


def slice_agreement(slices: list[dict], labels: dict[str, int], *, min_ml: float) -> dict:
    """Sensitivity/specificity of ``lesion_ml >= min_ml`` per slice against radiologist labels."""
    truth = np.array([labels[s["source_file"]] for s in slices], dtype=bool)
    lesion_ml = np.array([s["lesion_ml"] for s in slices])
    found = lesion_ml >= min_ml
    tp, fn = int(np.sum(found & truth)), int(np.sum(~found & truth))
    tn, fp = int(np.sum(~found & ~truth)), int(np.sum(found & ~truth))
    result = {
        "slices": len(slices), "infected_slices": int(truth.sum()), "min_ml": min_ml,
        "tp": tp, "fn": fn, "tn": tn, "fp": fp,
        "sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp),
    }
    result["auc_lesion_ml"] = roc_curve(truth.astype(int), lesion_ml, direction="<").auc
    return result


def read_labels(path: Path) -> dict[str, int]:
    with path.open() as f:
        return {row["file"]: int(row["infection"]) for row in csv.DictReader(f)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("density", "model"), default="density")
    parser.add_argument("--min-ml", type=float, default=0.05)
    args = parser.parse_args()
    from pneumolens.config import Config
    from pneumolens.export.json import analysis_to_dict
    from pneumolens.pipeline import analyze_path

    analysis = analyze_path(P002 / "dicom", Config(method=args.method))
    data = analysis_to_dict(analysis)
    result = slice_agreement(data["slices"], read_labels(P002 / "labels.csv"), min_ml=args.min_ml)
    result.update(method=data["lesions"]["method"], lesion_ml=data["lesions"]["volume_ml"],
                  left_ml=data["lesions"]["left"]["volume_ml"], right_ml=data["lesions"]["right"]["volume_ml"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
