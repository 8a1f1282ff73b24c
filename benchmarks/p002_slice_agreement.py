"""Agreement of per-slice lesion findings with radiologists' slice labels on COVID-CT-MD P002.

Runs the one analysis path on the bundled P002 series and compares, per slice, "lesion found"
(lesion volume on the slice >= ``--min-ml``) with ``labels.csv`` (infection yes/no, thoracic
radiologists), matched by DICOM file name. Also reports the slice-level AUC of the per-slice
lesion volume (pROC conventions, :mod:`pneumolens.validate`).

    python benchmarks/p002_slice_agreement.py --method model --figure docs/img/p002_slice_agreement.png

``--figure`` draws the per-slice lesion volume against the labelled ranges, and the label-0
slices with the most lesion, so a reader can judge the disagreements by eye.
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


def draw_figure(analysis, slices: list[dict], labels: dict[str, int], path: Path, *, n_images: int = 4) -> None:
    """PNG: lesion mL per slice (labelled-infected slices shaded) and the label-0 slices with most lesion."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from pneumolens.models.preprocess import LUNG_WINDOW_HU as LUNG_WINDOW

    files = [s["source_file"] for s in slices]
    truth = np.array([labels[f] for f in files], dtype=bool)
    lesion_ml = np.array([s["lesion_ml"] for s in slices])
    order = np.argsort(files)  # file order = superior to inferior for P002
    disagree: list[int] = []  # label-0 slices with most lesion, at least 4 slices apart
    for k in np.argsort(lesion_ml)[::-1]:
        if len(disagree) < n_images and not truth[k] and lesion_ml[k] > 0 and all(abs(k - d) >= 4 for d in disagree):
            disagree.append(int(k))
    fig = plt.figure(figsize=(4 + 3 * n_images, 4.2))
    grid = fig.add_gridspec(1, 1 + n_images, width_ratios=[1.6] + [1] * n_images)
    ax = fig.add_subplot(grid[0])
    x = np.arange(len(files))
    ax.fill_between(x, 0, lesion_ml.max(initial=1.0) * truth[order], step="mid", color="#9bd", alpha=0.5,
                    label="radiologists: infected")
    ax.plot(x, lesion_ml[order], color="#c22", lw=1.2, label=f"lesion mL ({analysis.lesions.method})")
    ax.set_xlabel("slice (file order, superior to inferior)")
    ax.set_ylabel("lesion mL per slice")
    ax.legend(fontsize=7)
    for i, k in enumerate(sorted(disagree, key=lambda k: files[k])):
        a = fig.add_subplot(grid[1 + i])
        z = int(slices[k]["index"])
        a.imshow(analysis.scan.volume[z], cmap="gray", vmin=LUNG_WINDOW[0], vmax=LUNG_WINDOW[1])
        lab = analysis.lesions.labels[z]
        a.imshow(np.ma.masked_equal(lab, 0), cmap="autumn_r", vmin=1, vmax=2, alpha=0.45, interpolation="nearest")
        a.set_title(f"{files[k]}: label 0, {lesion_ml[k]:.2f} mL", fontsize=8)
        a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("density", "model"), default="density")
    parser.add_argument("--min-ml", type=float, default=0.05)
    parser.add_argument("--figure", type=Path, default=None, help="write a PNG of the per-slice agreement here")
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
    if args.figure:
        draw_figure(analysis, data["slices"], read_labels(P002 / "labels.csv"), args.figure)


if __name__ == "__main__":
    main()
