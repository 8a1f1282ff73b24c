"""Pool the lobe model's cross-validation folds into per-lobe Dice over all held-out maps.

    python benchmarks/lobes_cv.py [--runs /work/runs/lobes_cv] [--out benchmarks/results_lobes_cv.json]
    python benchmarks/lobes_cv.py --prefix cv1400 --runs /work/runs/lobes_cv_long --out benchmarks/results_lobes_cv1400.json

Each fold was trained and tested by ``python -m pneumolens.train.lobes --fold K --folds 5`` (its
``heldout.json``: per-case per-lobe Dice of the fold's checkpoint on its 50 unseen maps at 1.5 mm).
With ``--runs`` the fold records (``train_log.jsonl``, ``heldout.json``) are first copied to
``docs/models/lobes_unet3d_records/{prefix}_fold{K}_*`` (prefix ``cv``: the first cross-validation,
327-518 CPU-s of training per fold; ``cv1400``: the second, 1400 CPU-s per fold); the summary is
then computed from those records.

Reported: per lobe, mean / s.d. / median / min over the pooled held-out maps; the mean of the
five lobes with a 95 % case bootstrap interval (percentile, 2000 resamples of the maps) and the
spread of the per-fold means; per fold, the training CPU seconds, steps and chosen step. Fold 1
holds out the fixed split's test and validation maps, so its Dice on the fixed test maps is
compared with the shipped model's.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RECORDS = REPO / "docs" / "models" / "lobes_unet3d_records"
LOBES = ("RUL", "RML", "RLL", "LUL", "LLL")


def copy_records(runs: Path, prefix: str = "cv") -> None:
    for fold_dir in sorted(runs.glob("fold_*")):
        k = fold_dir.name.split("_")[1]
        for name in ("train_log.jsonl", "heldout.json"):
            if (fold_dir / name).exists():
                shutil.copyfile(fold_dir / name, RECORDS / f"{prefix}_fold{k}_{name}")


def per_lobe(dice: np.ndarray) -> dict:
    """``dice``: (maps, 5) -> per-lobe mean, s.d., median, min and the mean of the lobe means."""
    out = {n: {"mean": float(np.nanmean(dice[:, i])), "sd": float(np.nanstd(dice[:, i])),
               "median": float(np.nanmedian(dice[:, i])), "min": float(np.nanmin(dice[:, i]))}
           for i, n in enumerate(LOBES)}
    out["mean_of_lobes"] = float(np.mean([out[n]["mean"] for n in LOBES]))
    return out


def bootstrap_mean_of_lobes(dice: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean of the five lobe means, resampling maps (Efron & Tibshirani 1993)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(dice), size=(reps, len(dice)))
    stats = np.nanmean(dice[idx], axis=1).mean(axis=1)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def summarise(fixed_test: set[str] | None = None, prefix: str = "cv") -> dict:
    folds = [json.loads(p.read_text()) for p in sorted(RECORDS.glob(f"{prefix}_fold*_heldout.json"))]
    if not folds:
        raise SystemExit(f"no {prefix}_fold*_heldout.json in {RECORDS}")
    rows, per_fold = [], []
    for f in folds:
        d = np.array([[c["dice"][n] for n in LOBES] for c in f["cases"]], dtype=float)
        rows.extend(f["cases"])
        per_fold.append({"fold": f["fold"], "n_test": f["n_test"], "n_train": f["n_train"], "n_val": f["n_val"],
                         "steps": f["steps"], "train_cpu_s": f["train_cpu_s"],
                         "train_elapsed_s": f["train_elapsed_s"], "best_step": f["best_step"],
                         "best_val_mean_grid": f["best_val"]["val_mean"], "eval_cpu_s": f["eval_cpu_s"],
                         "dice": per_lobe(d)})
    cases = [r["case"] for r in rows]
    if len(set(cases)) != len(cases):
        raise SystemExit("a case is held out in two folds")
    dice = np.array([[r["dice"][n] for n in LOBES] for r in rows], dtype=float)
    fold_means = np.array([p["dice"]["mean_of_lobes"] for p in per_fold])
    out = {"folds_done": len(folds), "folds_planned": folds[0]["folds"], "n_maps": len(rows),
           "pooled": per_lobe(dice), "mean_of_lobes_bootstrap_95": bootstrap_mean_of_lobes(dice),
           "fold_mean_of_lobes": {"mean": float(fold_means.mean()), "sd": float(fold_means.std(ddof=1))
                                  if len(fold_means) > 1 else float("nan"),
                                  "min": float(fold_means.min()), "max": float(fold_means.max())},
           "per_fold": per_fold}
    if fixed_test:
        for f in folds:
            sub = [c for c in f["cases"] if c["case"] in fixed_test]
            if len(sub) == len(fixed_test):
                d = np.array([[c["dice"][n] for n in LOBES] for c in sub], dtype=float)
                out["fixed_test_maps"] = {"fold": f["fold"], "n": len(sub), "dice": per_lobe(d)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=None, help="copy fold records from this run folder first")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "lobe_label_maps")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_lobes_cv.json")
    p.add_argument("--prefix", default="cv", help="record names: {prefix}_fold{K}_heldout.json (cv, cv1400)")
    args = p.parse_args()
    if args.runs is not None:
        copy_records(args.runs, args.prefix)
    from pneumolens.train.lobes import split_cases

    fixed = None
    if (args.data / "maps").is_dir():
        fixed = set(split_cases([q.name.split(".")[0] for q in (args.data / "maps").glob("*.nii.gz")])["test"])
    res = summarise(fixed, args.prefix)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    pooled = res["pooled"]
    print(f"{res['folds_done']} of {res['folds_planned']} folds, {res['n_maps']} held-out maps")
    print("| lobe | mean | s.d. | median | min |\n|---|---|---|---|---|")
    for n in LOBES:
        q = pooled[n]
        print(f"| {n} | {q['mean']:.3f} | {q['sd']:.3f} | {q['median']:.3f} | {q['min']:.3f} |")
    lo, hi = res["mean_of_lobes_bootstrap_95"]
    print(f"| mean of lobes | {pooled['mean_of_lobes']:.3f} (95 % bootstrap {lo:.3f}-{hi:.3f}) | | | |")
    for f in res["per_fold"]:
        d = f["dice"]
        print(f"fold {f['fold']}: steps {f['steps']} (best {f['best_step']}), train CPU {f['train_cpu_s']} s, "
              f"mean {d['mean_of_lobes']:.3f} " + " ".join(f"{n} {d[n]['mean']:.3f}" for n in LOBES))
    if "fixed_test_maps" in res:
        d = res["fixed_test_maps"]["dice"]
        print(f"fixed test maps (fold {res['fixed_test_maps']['fold']}): mean {d['mean_of_lobes']:.3f} "
              + " ".join(f"{n} {d[n]['mean']:.3f}" for n in LOBES))


if __name__ == "__main__":
    main()
