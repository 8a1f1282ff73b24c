"""Evaluate the lobe model on real data: held-out lobe maps, the CIP slab, real CT volumes, P002.

    python benchmarks/lobes_eval.py [--weights PATH.onnx] [--parts heldout,slab,volumes,p002]
        [--out benchmarks/results_lobes.json]

* ``heldout``: the 25 test maps of the fixed split (``pneumolens.train.lobes.split_cases``): lungs
  = union of the lobes at 1.5 mm -> predicted lobes; per-lobe Dice, and confidence against the
  measured precision (share of the predicted lobe's voxels that are right). Also with every
  third slice only (4.5 mm slices) and on the 25 validation maps (threshold choice).
* ``slab``: CIP COPDGene 16021S, 48 mm slab at the carina with semi-automatic lobe labels; lungs
  = union of the labels; per-lobe Dice.
* ``volumes``: every real chest CT in ``../shared/data`` (lungs from ``segment_lungs``): lobe
  volume fractions against the 1st-99th percentile of the 250 maps' ``volumes_ml.csv``.
* ``p002``: COVID-CT-MD P002: per-slice per-lobe lesion presence (lesion of that lobe on that
  slice >= ``--min-ml``) against the radiologists' per-slice per-lobe labels; sensitivity and
  specificity per lobe, lesion method = the default model.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from pneumolens.anatomy.lobes import (
    LOBE_MODEL,
    LOBE_NAMES,
    predict_lobes,
    read_label_map,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def lungs_of(lobes: np.ndarray) -> np.ndarray:
    """Lung labels (1 right, 2 left) of a lobe map (1-3 right, 4-5 left)."""
    return np.where((lobes >= 1) & (lobes <= 3), 1, np.where(lobes >= 4, 2, 0)).astype(np.uint8)


def dice_per_lobe(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    out = {}
    for lab, name in LOBE_NAMES.items():
        a, b = pred == lab, truth == lab
        s = int(a.sum() + b.sum())
        out[name] = 2.0 * int((a & b).sum()) / s if s else float("nan")
    return out


def precision_per_lobe(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {name: float((truth[pred == lab] == lab).mean()) if (pred == lab).any() else float("nan")
            for lab, name in LOBE_NAMES.items()}


def _summary(rows: list[dict]) -> dict:
    out = {}
    for name in LOBE_NAMES.values():
        d = np.array([r["dice"][name] for r in rows])
        out[name] = {"mean": float(np.nanmean(d)), "sd": float(np.nanstd(d)), "min": float(np.nanmin(d)),
                     "median": float(np.nanmedian(d))}
    means = [out[n]["mean"] for n in LOBE_NAMES.values()]
    out["mean_of_lobes"] = float(np.mean(means))
    conf = np.array([[r["confidence"][n] for n in LOBE_NAMES.values()] for r in rows])
    prec = np.array([[r["precision"][n] for n in LOBE_NAMES.values()] for r in rows])
    dice = np.array([[r["dice"][n] for n in LOBE_NAMES.values()] for r in rows])
    out["confidence_mean"] = float(np.nanmean(conf))
    out["precision_mean"] = float(np.nanmean(prec))
    out["confidence_vs_dice_spearman"] = _spearman(conf.ravel(), dice.ravel())
    out["confidence_vs_precision_spearman"] = _spearman(conf.ravel(), prec.ravel())
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic)


def heldout(weights: str, subset: str = "test", z_step: int = 1) -> dict:
    from pneumolens.train.lobes import split_cases

    root = DATA / "lobe_label_maps" / "maps"
    cases = split_cases([p.name.split(".")[0] for p in root.glob("*.nii.gz")])[subset]
    rows = []
    for case in cases:
        truth, affine = read_label_map(root / f"{case}.nii.gz")
        truth = truth[::z_step]
        spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
        spacing = (spacing[0] * z_step, spacing[1], spacing[2])
        t0 = time.perf_counter()
        res, _ = predict_lobes(lungs_of(truth), spacing, weights=weights, threads=1)
        rows.append({"case": case, "seconds": round(time.perf_counter() - t0, 2),
                     "dice": dice_per_lobe(res.labels, truth), "precision": precision_per_lobe(res.labels, truth),
                     "confidence": res.confidence})
    return {"subset": subset, "z_step": z_step, "n": len(rows), "summary": _summary(rows), "cases": rows}


def slab(weights: str) -> dict:
    truth, affine = read_label_map(DATA / "cip_copdgene16021S_lobe_slab" / "lobes_slab_96sl.nii.gz")
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    res, _ = predict_lobes(lungs_of(truth), spacing, weights=weights)
    return {"shape": list(truth.shape), "spacing_mm": spacing, "dice": dice_per_lobe(res.labels, truth),
            "confidence": res.confidence}


def reference_fractions() -> dict[str, tuple[float, float]]:
    """1st and 99th percentile of each lobe's share of the lung volume over the 250 maps."""
    with (DATA / "lobe_label_maps" / "volumes_ml.csv").open() as f:
        rows = list(csv.DictReader(f))
    vols = np.array([[float(r[f"{n}_ml"]) for n in LOBE_NAMES.values()] for r in rows])
    frac = vols / vols.sum(axis=1, keepdims=True)
    return {n: (float(np.percentile(frac[:, i], 1)), float(np.percentile(frac[:, i], 99)))
            for i, n in enumerate(LOBE_NAMES.values())}


def real_volumes() -> list[tuple[str, Path]]:
    return [
        ("covid_ct_md_P002", DATA / "covid_ct_md_P002" / "dicom"),
        ("chest_ct_volumes/lung1", DATA / "chest_ct_volumes" / "lung1_image.nrrd"),
        ("chest_ct_volumes/lung2", DATA / "chest_ct_volumes" / "lung2_image.nrrd"),
        ("cip_10002K/ct-64", DATA / "cip_10002K_ct64_fissure_atlas" / "ct-64.nrrd"),
        ("dicom_samples/siemens_20slice_series", DATA / "dicom_samples" / "siemens_20slice_series"),
    ]


def volumes(weights: str) -> dict:
    from pneumolens.anatomy import segment_lungs
    from pneumolens.errors import InputError
    from pneumolens.io import load_scan

    ref = reference_fractions()
    out = {"reference_p1_p99": ref, "volumes": []}
    for name, path in real_volumes():
        scan = load_scan(path)
        try:
            lungs = segment_lungs(scan.volume, scan.spacing)
        except InputError as exc:
            out["volumes"].append({"name": name, "input_error": str(exc)[:160]})
            continue
        t0 = time.perf_counter()
        res, _ = predict_lobes(lungs.labels, scan.spacing, weights=weights)
        seconds = time.perf_counter() - t0
        vml = scan.voxel_volume_ml
        ml = {n: float((res.labels == lab).sum() * vml) for lab, n in LOBE_NAMES.items()}
        total = sum(ml.values())
        frac = {n: v / total for n, v in ml.items()}
        inside = {n: bool(ref[n][0] <= frac[n] <= ref[n][1]) for n in LOBE_NAMES.values()}
        row = {"name": name, "shape": list(scan.shape), "spacing_mm": [round(s, 3) for s in scan.spacing],
               "lobe_ml": ml, "fraction": frac, "inside_p1_p99": inside, "all_inside": all(inside.values()),
               "confidence": res.confidence, "seconds": round(seconds, 2)}
        if name.startswith("cip_10002K"):
            atlas, _ = read_label_map(DATA / "cip_10002K_ct64_fissure_atlas" / "lobes_DERIVED_10002K_64.nii.gz")
            if atlas.shape == res.labels.shape:
                row["dice_vs_derived_atlas_not_truth"] = dice_per_lobe(res.labels, np.where(lungs.labels > 0, atlas, 0))
        out["volumes"].append(row)
    return out


def draw_figure(analysis, regions, path: Path) -> None:
    """The report's two lobe pictures (coronal through the lungs' centre, axial with most lesion), side by side."""
    import dataclasses
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from pneumolens.export.report import region_images

    pngs = region_images(dataclasses.replace(analysis, regions=regions))
    fig, axes = plt.subplots(1, len(pngs), figsize=(5 * len(pngs), 5))
    for ax, item in zip(axes, pngs):
        ax.imshow(plt.imread(io.BytesIO(item["png"])))
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100, facecolor="black")
    plt.close(fig)


def p002(weights: str, min_ml: float, figure: Path | None = None) -> dict:
    from pneumolens.pipeline import analyze_path
    from pneumolens.scores import region_slice_counts

    analysis = analyze_path(REPO / "examples" / "covid_ct_md_P002" / "dicom")
    res, _ = predict_lobes(analysis.lungs.labels, analysis.scan.spacing, weights=weights)
    if figure is not None:
        draw_figure(analysis, res, figure)
    counts = region_slice_counts(res.labels, analysis.lesions.labels, LOBE_NAMES)
    files = analysis.scan.info.source_files
    with (DATA / "covid_ct_md_P002" / "labels.csv").open() as f:
        labels = {r["file"]: r for r in csv.DictReader(f)}
    vml = analysis.scan.voxel_volume_ml
    out = {"min_ml": min_ml, "lesion_method": analysis.lesions.method, "confidence": res.confidence, "lobes": {}}
    for name in LOBE_NAMES.values():
        truth = np.array([int(labels[f][name]) for f in files], dtype=bool)
        found = counts[name] * vml >= min_ml
        tp, fn = int((found & truth).sum()), int((~found & truth).sum())
        tn, fp = int((~found & ~truth).sum()), int((found & ~truth).sum())
        out["lobes"][name] = {"positive_slices": int(truth.sum()), "tp": tp, "fn": fn, "tn": tn, "fp": fp,
                              "sensitivity": tp / (tp + fn) if tp + fn else None,
                              "specificity": tn / (tn + fp) if tn + fp else None,
                              "lesion_ml": float(counts[name].sum() * vml)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=LOBE_MODEL)
    p.add_argument("--parts", default="heldout,slab,volumes,p002")
    p.add_argument("--min-ml", type=float, default=0.05)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_lobes.json")
    p.add_argument("--figure", type=Path, default=None, help="P002 lobe picture (PNG) to write")
    args = p.parse_args()
    parts = args.parts.split(",")
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result["date"] = time.strftime("%Y-%m-%d")
    result["weights"] = str(args.weights)
    if "heldout" in parts:
        result["heldout_test"] = heldout(args.weights, "test")
        result["heldout_test_4.5mm_slices"] = heldout(args.weights, "test", z_step=3)
        print(json.dumps(result["heldout_test"]["summary"], indent=1))
    if "val" in parts:
        result["validation"] = heldout(args.weights, "val")
        print(json.dumps(result["validation"]["summary"], indent=1))
    if "slab" in parts:
        result["cip_slab"] = slab(args.weights)
        print(json.dumps(result["cip_slab"], indent=1))
    if "volumes" in parts:
        result["real_volumes"] = volumes(args.weights)
        print(json.dumps(result["real_volumes"], indent=1))
    if "p002" in parts:
        result["p002"] = p002(args.weights, args.min_ml, args.figure)
        print(json.dumps(result["p002"], indent=1))
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
