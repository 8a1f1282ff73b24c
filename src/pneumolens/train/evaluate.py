"""Evaluate the lesion model (ONNX, as shipped) on real held-out data.

``python -m pneumolens.train.evaluate [--weights PATH] [--data DIR] [--json OUT]`` measures:

- binary Dice on the held-out Zenodo block (slices 1258-1613, 4 whole cases never trained on),
  at the slices' own 256x256 resolution, crop box from the provided lung masks as in training;
- GGO / consolidation / binary Dice on the held-out MedSeg multi-class slices (files >= 47);
- slice-level infection detection AUC on ``covid_ct_md_P002`` (the whole 3D volume, through
  ``pneumolens.io.load_scan`` -> ``pipeline.analyze``, the one analysis path), with
  per-slice scores ``max`` (largest lesion probability in the lungs) and ``area`` (lesion
  pixels in the lungs), against the radiologists' per-slice labels;
- the fraction of lesion voxels the network predicts inside the lungs (without restriction),
  the share of predicted lesion volume in the left lung (P002 has left-lobe disease only),
- on the two scans without pneumonia (``chest_ct_volumes`` lung1/lung2), the lesion % of lung
  and the lung volume lung completion adds to the lung mask;
- 3D Dice of lesions inserted **in 3D** (:func:`~pneumolens.train.insertion.insert_lesions_3d`)
  into real HU volumes, through ``pipeline.analyze`` (lungs recomputed on the lesioned volume),
  for the model and for the density method: into the right lung of P002 (radiologists: no
  infection there; a background never trained on) and into ``chest_ct_volumes`` lung1/lung2
  (backgrounds whose slices were trained on with 2D insertions). Synthetic lesions: reported
  apart from the real-data numbers;
- wall time of the analysis stages on P002 and on a 150-slice volume built from it.

Dice is pooled over all pixels of a set (sum of intersections over sum of sizes) and also
averaged per slice (slices with empty truth and empty prediction count as 1, MONAI's
``ignore_empty=False`` rule).

Needs onnxruntime only (no torch) and the shared data folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np

from pneumolens import models
from pneumolens.config import Config
from pneumolens.io.scan import scan_from_array
from pneumolens.lesions.model import segment_lesions_model, segment_slice_images
from pneumolens.masks import LesionMasks
from pneumolens.models import preprocess as pp
from pneumolens.pipeline import analyze
from pneumolens.train import data as D
from pneumolens.validate.segmentation import dice, dice_bootstrap

logger = logging.getLogger(__name__)


def _per_slice_mean(preds: list[np.ndarray], truths: list[np.ndarray]) -> float:
    vals = [dice(p, t, both_empty="one") for p, t in zip(preds, truths)]
    return float(np.mean(vals)) if vals else float("nan")


def pixel_counts(preds: list[np.ndarray], truths: list[np.ndarray]) -> tuple[int, int, int]:
    """Pooled (true positives, predicted, true) pixel counts."""
    tp = sum(int(np.logical_and(p, t).sum()) for p, t in zip(preds, truths))
    return tp, sum(int(p.sum()) for p in preds), sum(int(t.sum()) for t in truths)


def pooled_dice(preds: list[np.ndarray], truths: list[np.ndarray]) -> float:
    """Dice of all pixels of all images together (NaN when both are empty everywhere)."""
    tp, n_pred, n_true = pixel_counts(preds, truths)
    return float("nan") if n_pred + n_true == 0 else 2.0 * tp / (n_pred + n_true)


def precision_recall(preds: list[np.ndarray], truths: list[np.ndarray]) -> tuple[float, float]:
    """Pooled precision and recall of the predicted masks."""
    tp, n_pred, n_true = pixel_counts(preds, truths)
    return tp / max(1, n_pred), tp / max(1, n_true)


def dice_with_ci(preds: list[np.ndarray], truths: list[np.ndarray], *, seed: int = 0) -> dict:
    """Per-slice pixel counts (for paired comparisons) and bootstrap CIs of the pooled and
    per-slice Dice (:func:`pneumolens.validate.segmentation.dice_bootstrap`, slices resampled)."""
    counts = [pixel_counts([p], [t]) for p, t in zip(preds, truths)]
    b = dice_bootstrap(np.array(counts).reshape(-1, 3), seed=seed)
    return {"pooled_ci95": list(b.pooled_ci), "mean_per_slice_ci95": list(b.mean_ci), "per_slice_counts": counts}


#: Slices whose lesion covers at least this share of the lungs count as extensive disease.
EXTENSIVE = 0.3


def evaluate_zenodo(
    model: models.Model, root: Path, *, step: int = 1, threshold: float = 0.5, indices: list[int] | None = None,
    tta: bool = True,
) -> dict:
    """Binary Dice on the held-out Zenodo block at 256x256 (every ``step``-th slice), or on the
    slices ``indices`` (a validation block, training slices).

    Also precision / recall, bootstrap CIs (:func:`dice_with_ci`), and Dice apart for slices with
    focal and with extensive disease (lesion over at least :data:`EXTENSIVE` of the slice's lungs).
    """
    idx = list(indices) if indices is not None else D.zenodo_indices(root, holdout=True, step=step)
    slices = [D.read_zenodo_slice(root, i) for i in idx]
    truths = [s.infection for s in slices]
    extents = [D.lesion_extent(s.infection, s.lungs) for s in slices]
    res = segment_slice_images([s.image for s in slices], weights=model, boxes=[s.box for s in slices], threshold=threshold,
                               flip_tta=tta)
    preds = [r.labels > 0 for r in res]
    precision, recall = precision_recall(preds, truths)
    out = {
        "slices": len(idx),
        "first_last": [idx[0], idx[-1]],
        "dice_binary_pooled": pooled_dice(preds, truths),
        "dice_binary_mean_per_slice": _per_slice_mean(preds, truths),
        "precision": precision,
        "recall": recall,
        **dice_with_ci(preds, truths),
    }
    for key, sel in (("focal", [e < EXTENSIVE for e in extents]), ("extensive", [e >= EXTENSIVE for e in extents])):
        p = [x for x, keep in zip(preds, sel) if keep]
        t = [x for x, keep in zip(truths, sel) if keep]
        out[f"{key}_slices"] = len(p)
        out[f"dice_binary_pooled_{key}"] = pooled_dice(p, t)
    return out


def evaluate_medseg(model: models.Model, root: Path, *, stems: list[str] | None = None, tta: bool = True) -> dict:
    """GGO / consolidation / binary Dice on the held-out MedSeg multi-class slices (or ``stems``)."""
    base = root / "covid_seg_2d_medseg" / "multiclass"
    stems = list(stems) if stems is not None else D.medseg_names(root, holdout=True)
    images = [D.read_gray(base / "Imgs" / f"{s}.jpg").astype(np.float32) / 255.0 for s in stems]
    truths = [D.read_palette(base / "GT" / f"{s}.png") for s in stems]
    res = segment_slice_images(images, weights=model, boxes=[pp.full_box(im.shape) for im in images], flip_tta=tta)
    out: dict = {"slices": len(stems), "files": stems}
    for name, cls in (("binary", None), ("ggo", 1), ("consolidation", 2)):
        preds = [(r.labels > 0) if cls is None else (r.labels == cls) for r in res]
        gts = [(t > 0) if cls is None else (t == cls) for t in truths]
        out[f"dice_{name}_pooled"] = pooled_dice(preds, gts)
        out[f"dice_{name}_mean_per_slice"] = _per_slice_mean(preds, gts)
        out[name] = dice_with_ci(preds, gts)
    return out


#: Validation block of the v2 recipe (``configs/lesions_v2.toml``): whole patients inside the
#: Zenodo training block, and MedSeg files 40-46. The shipped stages trained on them.
ZENODO_VALIDATION = (1081, 1258)
MEDSEG_VALIDATION = (40, 47)


def evaluate_training_and_validation(model: models.Model, root: Path, *, train_step: int = 6, tta: bool = True) -> dict:
    """Dice on every ``train_step``-th Zenodo slice of the v2 training block (fit), and on the v2
    validation blocks (Zenodo 1081-1257, MedSeg 40-46)."""
    train_idx, val_idx = D.split_block(D.zenodo_indices(root, holdout=False), ZENODO_VALIDATION)
    medseg_val = D.split_block([int(s) for s in D.medseg_names(root, holdout=False)], MEDSEG_VALIDATION)[1]
    return {
        f"zenodo_training_every_{train_step}": evaluate_zenodo(model, root, indices=train_idx[::train_step], tta=tta),
        "zenodo_validation": evaluate_zenodo(model, root, indices=val_idx, tta=tta),
        "medseg_validation": evaluate_medseg(model, root, stems=[str(s) for s in medseg_val], tta=tta),
    }


def p002_slice_labels(root: Path, scan) -> np.ndarray:
    """Per canonical z index: 1 infected, 0 not (matched on the slice position in mm)."""
    with (root / "covid_ct_md_P002" / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    pos = np.array([float(r["image_position_z_mm"]) for r in rows])
    lab = np.array([int(r["infection"]) for r in rows])
    z_mm = np.array([(scan.affine @ np.array([k, 0.0, 0.0, 1.0]))[2] for k in range(scan.shape[0])])
    nearest = np.abs(z_mm[:, None] - pos[None, :]).argmin(axis=1)
    gap = np.abs(z_mm - pos[nearest]).max()
    if gap > 0.5:
        raise ValueError(f"P002 slice positions do not match labels.csv (largest gap {gap:.2f} mm)")
    return lab[nearest]


def load_p002(root: Path):
    """The P002 test volume as a :class:`~pneumolens.io.CTScan`."""
    from pneumolens.io import load_scan

    return load_scan(root / "covid_ct_md_P002" / "dicom")


def _config(model: models.Model, method: str = "model", *, tta: bool = True) -> Config:
    """The analysis settings that use ``model`` (its file; :func:`models.load` caches it)."""
    return Config(method=method, lesion_weights=model.path if method == "model" else None, lesion_tta=tta)


def evaluate_p002(model: models.Model, root: Path, *, scan=None, tta: bool = True) -> dict:
    """Slice-level AUC, lesions inside the lungs and timing on the P002 volume (``pipeline.analyze``)."""
    from pneumolens.validate.roc import mann_whitney_auc

    scan = scan if scan is not None else load_p002(root)
    truth = p002_slice_labels(root, scan)
    analysis = analyze(scan, _config(model, tta=tta))
    les, lungs = analysis.lesions, analysis.lungs
    raw = segment_lesions_model(scan.volume, scan.spacing, lungs, weights=model, restrict_to_lungs=False)
    lung = lungs.union
    scores = {
        "max": les.probability.max(axis=(1, 2)),
        "area": (les.labels > 0).sum(axis=(1, 2)).astype(float),
        "probability_sum": les.probability.sum(axis=(1, 2)),
    }
    aucs = {k: mann_whitney_auc(v[truth == 1], v[truth == 0]) for k, v in scores.items()}
    raw_any = raw.labels > 0
    ml = scan.voxel_volume_ml
    t = analysis.timings_s
    return {
        "slices": int(truth.size),
        "infected_slices": int(truth.sum()),
        "auc": aucs,
        "lesion_ml": float((les.labels > 0).sum() * ml),
        "ggo_ml": float((les.labels == 1).sum() * ml),
        "consolidation_ml": float((les.labels == 2).sum() * ml),
        "fraction_left_lung": float(((les.labels > 0) & lungs.left).sum() / max(1, (les.labels > 0).sum())),
        "fraction_inside_lungs_unrestricted": float((raw_any & lung).sum() / max(1, raw_any.sum())),
        "lesion_slices_without_infection_label": int(((les.labels > 0).any(axis=(1, 2)) & (truth == 0)).sum()),
        "lung_added_ml": analysis.lung_added_ml,
        "seconds_lungs": round(t["lungs"], 2),
        "seconds_lesions": round(t["lesions"] + t["lung_completion"], 2),
        "shape": list(scan.shape),
    }


def evaluate_normal(model: models.Model, root: Path, *, tta: bool = True) -> dict:
    """Lesion % of lung and lung added by lung completion on the two scans without pneumonia."""
    from pneumolens.io import load_scan

    out = {}
    for name in ("lung1", "lung2"):
        analysis = analyze(load_scan(root / "chest_ct_volumes" / f"{name}_image.nrrd"), _config(model, tta=tta))
        out[f"chest_ct_volumes/{name}"] = {
            "lesion_percent_of_lung": float(
                100.0 * analysis.lesions.any.sum() / max(1, analysis.lungs.union.sum())
            ),
            "lesion_ml": float(analysis.lesions.any.sum() * analysis.scan.voxel_volume_ml),
            "lung_added_ml": analysis.lung_added_ml,
        }
    return out


def _normal_volumes(root: Path) -> list[tuple[str, np.ndarray, tuple[float, float, float], str]]:
    """``chest_ct_volumes`` lung1/lung2 (no pneumonia) as ``(name, HU volume, spacing, "both")``."""
    from pneumolens.io import load_scan

    out = []
    for name in ("lung1", "lung2"):
        scan = load_scan(root / "chest_ct_volumes" / f"{name}_image.nrrd")
        out.append((f"chest_ct_volumes/{name}", scan.volume, tuple(scan.spacing), "both"))
    return out


def _inserted_backgrounds(root: Path, scan) -> list[tuple[str, np.ndarray, tuple[float, float, float], str]]:
    """``(name, HU volume, spacing, where)``: where = "right" (P002: left lung has real disease) or "both"."""
    return [("covid_ct_md_P002 (right lung)", scan.volume, tuple(scan.spacing), "right"), *_normal_volumes(root)]


def fuse_density(model: LesionMasks, density: LesionMasks, floor: float) -> np.ndarray:
    """Model lesion labels plus density-method lesion voxels where the model's probability is at
    least ``floor`` (those get the density method's GGO/consolidation label)."""
    extra = (model.labels == 0) & (density.labels > 0) & (model.probability >= floor)
    return np.where(extra, density.labels, model.labels).astype(np.uint8)


def evaluate_inserted_3d(
    model: models.Model, root: Path, *, scan=None, cases: int = 8, seed: int = 0, tta: bool = True,
    fusion_floors: Sequence[float] = (),
) -> dict:
    """3D Dice of 3D-inserted lesions in real HU volumes, model vs density (patterns in turn), mean per case.

    ``fusion_floors`` adds, per floor ``f``, a run ``fused_<f>``: the model's lesions plus the
    density method's where the model's probability is at least ``f`` (density-method fusion for
    diffuse ground glass, which the model only partly calls lesion), GGO where only density says so.
    """
    from pneumolens.anatomy import segment_lungs
    from pneumolens.train.insertion import PATTERNS, insert_lesions_3d

    scan = scan if scan is not None else load_p002(root)
    rng = np.random.default_rng(seed)
    rows = []
    for name, vol, spacing, where in _inserted_backgrounds(root, scan):
        clean = segment_lungs(vol, spacing)
        target = clean.right if where == "right" else clean.union
        region = np.ones(vol.shape, dtype=bool)
        if where == "right":  # score the right side only: x index grows toward patient left (LPS)
            mid = (np.nonzero(clean.right.any(axis=(0, 1)))[0].max() + np.nonzero(clean.left.any(axis=(0, 1)))[0].min()) // 2
            region[:, :, mid:] = False
        ml = float(np.prod(spacing)) / 1000.0
        for i in range(cases):
            ins = insert_lesions_3d(vol, target, spacing=spacing, rng=rng, pattern=PATTERNS[i % len(PATTERNS)])
            lesioned = scan_from_array(np.round(ins.hu).astype(np.int16), spacing, path=f"{name} + inserted")
            # "model_clean_lungs": the lung mask of the scan before insertion (an oracle lung mask
            # that contains the inserted lesion), to tell lesion-model misses from lung-mask misses.
            runs = {
                "model": analyze(lesioned, _config(model, tta=tta)),
                "density": analyze(lesioned, _config(model, "density")),
                "model_clean_lungs": analyze(lesioned, _config(model, tta=tta), lungs=clean),
            }
            row = {
                "volume": name,
                "pattern": ins.pattern,
                "truth_ml": round(float((ins.labels > 0).sum() * ml), 2),
                "truth_consolidation_ml": round(float((ins.labels == 2).sum() * ml), 2),
                "truth_inside_lungs": float(
                    ((ins.labels > 0) & runs["density"].lungs.union).sum() / max(1, (ins.labels > 0).sum())
                ),
            }
            preds = {key: analysis.lesions.labels for key, analysis in runs.items()}
            for floor in fusion_floors:
                preds[f"fused_{floor:g}"] = fuse_density(runs["model"].lesions, runs["density"].lesions, floor)
            for key, labels in preds.items():
                pred = labels * region
                row[key] = {
                    "dice": dice(pred > 0, ins.labels > 0, both_empty="nan"),
                    "dice_ggo": dice(pred == 1, ins.labels == 1, both_empty="nan"),
                    "dice_consolidation": dice(pred == 2, ins.labels == 2, both_empty="nan"),
                    "predicted_ml": round(float((pred > 0).sum() * ml), 2),
                }
            rows.append(row)
            logger.info("inserted 3D %s %s: %s", name, ins.pattern, row)
    summary = {
        run: {key: float(np.nanmean([r[run][key] for r in rows])) for key in ("dice", "dice_ggo", "dice_consolidation")}
        for run in ("model", "density", "model_clean_lungs", *(f"fused_{f:g}" for f in fusion_floors))
    }
    summary["truth_inside_lungs"] = float(np.mean([r["truth_inside_lungs"] for r in rows]))
    return {"cases": rows, "mean": summary, "seed": seed}


def time_150(model: models.Model, scan, *, repeats: int = 1, tta: bool = True) -> dict:
    """Wall time of the analysis stages on a 512x512x150 volume (P002 with 17 slices repeated)."""
    vol = np.concatenate([scan.volume, scan.volume[-(150 - scan.shape[0]) :]])[:150]
    big = scan_from_array(vol, scan.spacing, path="P002 x 150")
    best = {}
    for _ in range(repeats):
        t = analyze(big, _config(model, tta=tta)).timings_s
        run = {"lungs": t["lungs"], "lesions": t["lesions"] + t["lung_completion"]}
        run["total"] = run["lungs"] + run["lesions"]
        best = run if not best or run["total"] < best["total"] else best
    return {"shape": list(vol.shape), **{k: round(v, 2) for k, v in best.items()}}


def evaluate(
    weights: str | Path | None, root: Path, *, threads: int = 0, timing: bool = True, inserted: bool = True,
    tta: bool = True, validation_only: bool = False,
) -> dict:
    """All measurements, as a JSON-able dict; with ``validation_only`` only the validation and
    training blocks (for choices - a checkpoint, TTA - made before the test blocks are read)."""
    model = models.load(weights or models.LESION_MODEL, threads=threads)
    out = {
        "model": model.name,
        "sha256": model.meta["sha256"],
        "date": date.today().isoformat(),
        "flip_tta": tta,
        **evaluate_training_and_validation(model, root, tta=tta),
    }
    if validation_only:
        return out
    scan = load_p002(root)
    out.update({
        "zenodo_holdout": evaluate_zenodo(model, root, tta=tta),
        "medseg_holdout": evaluate_medseg(model, root, tta=tta),
        "covid_ct_md_P002": evaluate_p002(model, root, scan=scan, tta=tta),
        "normal_lungs": evaluate_normal(model, root, tta=tta),
    })
    if inserted:
        out["inserted_3d"] = evaluate_inserted_3d(model, root, scan=scan, tta=tta)
    if timing:
        out["timing_512x512x150"] = time_150(model, scan, tta=tta)
    return out


def inserted_table(inserted: dict) -> str:
    """Markdown table of :func:`evaluate_inserted_3d` results: mean Dice per background and pattern."""
    runs = (("model", "model"), ("model_clean_lungs", "model, lung mask of the clean scan"), ("density", "density"))
    head = "| background | pattern | cases | lesion mL (mean) | kept by the lung mask | " + " | ".join(
        f"Dice {label}" for _, label in runs
    )
    lines = [head + " |", "|" + "---|" * (5 + len(runs))]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in inserted["cases"]:
        groups.setdefault((row["volume"], row["pattern"]), []).append(row)
    for (volume, pattern), rows in groups.items():
        cells = [volume, pattern, str(len(rows)), f"{np.mean([r['truth_ml'] for r in rows]):.0f}",
                 f"{100 * np.mean([r['truth_inside_lungs'] for r in rows]):.0f} %"]
        cells += [f"{np.nanmean([r[key]['dice'] for r in rows]):.2f}" for key, _ in runs]
        lines.append("| " + " | ".join(cells) + " |")
    mean = inserted["mean"]
    lines.append("| **all** | | " + str(len(inserted["cases"])) + " | | "
                 + f"{100 * mean['truth_inside_lungs']:.0f} % | "
                 + " | ".join(f"**{mean[key]['dice']:.2f}**" for key, _ in runs) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from pneumolens.runtime import prepare_for_analyses
    from pneumolens.train.config import RecipeConfig

    prepare_for_analyses()  # analyses of whole volumes follow: the CLI's process settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="ONNX path (default: the shipped lesion_unet2d)")
    parser.add_argument("--data", type=Path, default=None, help="shared data folder")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--no-inserted", action="store_true", help="skip the 3D inserted-lesion cases")
    parser.add_argument("--markdown", action="store_true", help="also print the 3D inserted-lesion table")
    parser.add_argument("--no-tta", action="store_true", help="without flip test-time augmentation")
    parser.add_argument("--validation-only", action="store_true",
                        help="only the validation and training blocks: the test blocks stay unread")
    args = parser.parse_args(argv)
    root = args.data or RecipeConfig(base_dir=Path(__file__).resolve().parents[3] / "configs").data_root()
    result = evaluate(args.weights, root, threads=args.threads, timing=not args.no_timing, inserted=not args.no_inserted,
                      tta=not args.no_tta, validation_only=args.validation_only)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    if args.markdown and "inserted_3d" in result:
        print(inserted_table(result["inserted_3d"]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
