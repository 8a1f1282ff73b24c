"""Inference-side variants of the lobe model (post-processing, smoothing, shift averaging) on the CV folds.

    python benchmarks/lobes_cv_postproc.py cache --fold K --part val|test [--runs /work/runs/lobes_cv]
    python benchmarks/lobes_cv_postproc.py select [--out benchmarks/results_lobes_postproc.json]
    python benchmarks/lobes_cv_postproc.py test   [--out ...]

``cache`` runs fold K's checkpoint (``--fold 0``: the shipped ONNX, fixed split) on its validation
or test maps once, with the grid centre at the lungs' centre and at half-grid-voxel shifts, and
stores per map the grid probabilities and the map's true lobe voxel counts per label block (the
blocks of :data:`pneumolens.anatomy.lobes.LABEL_BLOCK_MM` on which labels are decided). Because
labels are constant per block within each lung, per-lobe Dice computed from these counts equals
the voxel-by-voxel Dice at the map's own 1.5 mm resolution (checked against the fold records).

``select`` evaluates every variant on each fold's 25 validation maps (fold 0: the shipped model
on the fixed split's 25 validation maps). Rule, fixed before any test map was looked at: per
fold, the variant with the highest mean of lobes on the validation maps is chosen; it replaces
the plain arg-max only if it beats it there by at least :data:`MIN_GAIN` (a smaller gain is not
worth a change of the product's inference path, and is below what 25 maps can resolve).
``test`` applies each fold's best validation variant and the plain arg-max to its 50 test maps
(one network run per map, plus the shift runs when a chosen variant averages them); per-map
Dice go to ``docs/models/lobes_unet3d_records/cv_postproc_test_cases.jsonl``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from pneumolens.anatomy import lobes as L
from pneumolens.anatomy.lobe_grid import lung_input
from pneumolens.anatomy.lobes import read_label_map
from pneumolens.grid import reduction_factors

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
DATA = REPO.parent / "shared" / "data" / "lobe_label_maps"
CACHE = Path("/work/runs/lobes_pp/cache")
LOBES = ("RUL", "RML", "RLL", "LUL", "LLL")
#: Grid-centre offsets (mm) of the shift runs: half a 5 mm grid voxel along each axis.
#: Smallest gain in the validation mean of lobes for which a variant replaces the plain arg-max.
MIN_GAIN = 0.002
SHIFTS = [(0.0, 0.0, 0.0)] + [tuple(s * (a == i) for a in range(3)) for i in range(3) for s in (-2.5, 2.5)]


def _runner(fold: int, runs: Path):
    if fold == 0:
        from pneumolens import models

        return models.load(L.LOBE_MODEL, threads=1, kind="lung_mask_grid")
    import torch

    from pneumolens.train.lobes import _TorchRunner, build_model

    torch.set_num_threads(1)
    net = build_model()
    net.load_state_dict(torch.load(runs / f"fold_{fold}" / "best.pt", weights_only=False)["model"])
    return _TorchRunner(net)


def _cases(fold: int, part: str, runs: Path) -> list[str]:
    if fold == 0:
        from pneumolens.train.lobes import split_cases

        return split_cases([p.name.split(".")[0] for p in (DATA / "maps").glob("*.nii.gz")])[part]
    return json.loads((runs / f"fold_{fold}" / "split.json").read_text())[part]


def block_counts(labels: np.ndarray, box, factors) -> np.ndarray:
    """``(6, *blocks)`` counts per label block of the box: right lung, left lung, then true lobes 1-5."""
    sub = labels[box]
    shape = tuple(-(-n // f) for n, f in zip(sub.shape, factors))
    padded = np.zeros(tuple(n * f for n, f in zip(shape, factors)), dtype=np.uint8)
    padded[: sub.shape[0], : sub.shape[1], : sub.shape[2]] = sub
    r = padded.reshape(shape[0], factors[0], shape[1], factors[1], shape[2], factors[2])
    out = np.stack([((r >= 1) & (r <= 3)).sum(axis=(1, 3, 5), dtype=np.uint8),
                    (r >= 4).sum(axis=(1, 3, 5), dtype=np.uint8)]
                   + [(r == k).sum(axis=(1, 3, 5), dtype=np.uint8) for k in range(1, 6)])
    return out


def cache(fold: int, part: str, runs: Path, *, shifts: int = len(SHIFTS)) -> None:
    out = CACHE / f"fold{fold}_{part}"
    out.mkdir(parents=True, exist_ok=True)
    runner = _runner(fold, runs)
    t0 = time.process_time()
    net_s = 0.0
    for case in _cases(fold, part, runs):
        if (out / f"{case}.npz").exists():
            continue
        truth, affine = read_label_map(DATA / "maps" / f"{case}.nii.gz")
        spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
        lungs = np.where((truth >= 1) & (truth <= 3), 1, np.where(truth >= 4, 2, 0)).astype(np.uint8)
        probs = []
        for d in SHIFTS[:shifts]:
            x, centre = lung_input(lungs == 1, lungs == 2, spacing, offset_mm=d)
            c = time.process_time()
            logits = runner.run(x[None])[0].astype(np.float32)
            net_s += time.process_time() - c
            probs.append(L.side_softmax(logits).astype(np.float16))
        factors = reduction_factors(spacing, L.LABEL_BLOCK_MM)
        box = L._bbox(lungs > 0)
        counts = block_counts(truth, box, factors)
        centres = [(b.start + np.arange(n) * f + (f - 1) / 2.0) * s
                   for b, n, f, s in zip(box, counts.shape[1:], factors, spacing)]
        np.savez_compressed(out / f"{case}.npz", probs=np.stack(probs), counts=counts,
                            centre=np.asarray(centre, dtype=np.float32), shifts=np.array(SHIFTS[:shifts], dtype=np.float32),
                            spacing=np.array(spacing), factors=np.array(factors),
                            **{f"centres{a}": centres[a] for a in range(3)})
    print(f"fold {fold} {part}: {time.process_time() - t0:.1f} CPU-s ({net_s:.1f} in the network)")


# ----------------------------------------------------------------------------- variants
def dice_from_blocks(right_lab: np.ndarray, left_lab: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-lobe Dice at voxel resolution from block labels and block counts (see :func:`block_counts`)."""
    out = np.empty(5)
    for k in range(5):
        lab, side = (right_lab, 0) if k < 3 else (left_lab, 1)
        sel = lab == k + 1
        inter = counts[2 + k][sel].sum(dtype=np.int64)
        pred = counts[side][sel].sum(dtype=np.int64)
        true = counts[2 + k].sum(dtype=np.int64)
        out[k] = 2.0 * inter / (pred + true) if pred + true else np.nan
    return out


BASELINE = {"name": "argmax", "sigma_mm": 0.0, "shift_tta": False, "cleanup": "none", "log_w": None}


def variants() -> list[dict]:
    """The variants tried besides the plain arg-max (``log_w: "tune"`` = per-lobe weights tuned on the maps)."""
    base = {k: v for k, v in BASELINE.items() if k != "name"}
    return [dict(base, name="largest component (6-conn.)", cleanup="6"),
            dict(base, name="largest component (26-conn.)", cleanup="26"),
            dict(base, name="smoothing 5 mm", sigma_mm=5.0),
            dict(base, name="smoothing 10 mm", sigma_mm=10.0),
            dict(base, name="shift averaging (7 runs)", shift_tta=True),
            dict(base, name="shift averaging + largest component (6)", shift_tta=True, cleanup="6"),
            dict(base, name="per-lobe weights (tuned)", log_w="tune")]


def block_probabilities(case: dict, variant: dict) -> np.ndarray:
    """``(5, *blocks)`` probabilities of a cached map under ``variant`` (smoothing, shift averaging)."""
    centres = [case[f"centres{a}"] for a in range(3)]
    runs = range(len(case["shifts"])) if variant["shift_tta"] else [0]
    p = 0.0
    for i in runs:
        g = case["probs"][i].astype(np.float32)
        if variant["sigma_mm"] > 0:
            g = L.smooth_probabilities(g, variant["sigma_mm"])
        p = p + L._probabilities_on_blocks(g, centres, case["centre"] + case["shifts"][i])
    return p / len(runs)


def evaluate(case: dict, variant: dict) -> np.ndarray:
    """Per-lobe Dice of one cached map under ``variant``."""
    p = block_probabilities(case, variant)
    if variant["log_w"] is not None:
        p = p * np.exp(np.asarray(variant["log_w"], dtype=np.float32))[:, None, None, None]
    counts = case["counts"]
    right_lab, left_lab = L.block_labels(p, counts[0] > 0, counts[1] > 0, cleanup=variant["cleanup"])
    return dice_from_blocks(right_lab, left_lab, counts)


WEIGHT_GRID = np.round(np.arange(-0.4, 0.41, 0.1), 2)


def tune_weights(cases: list[dict]) -> tuple[float, ...]:
    """Log-weights of the five lobe probabilities maximising the summed per-lobe mean Dice over ``cases``.

    RUL and LUL keep weight 1; RML, RLL (jointly) and LLL are searched on :data:`WEIGHT_GRID`
    (each lung's labels depend only on its own weights).
    """
    sides = []
    for case in cases:
        p = block_probabilities(case, BASELINE)
        c = case["counts"]
        r, l = c[0] > 0, c[1] > 0
        sides.append(((p[0:3][:, r], c[0][r], c[2:5][:, r]), (p[3:5][:, l], c[1][l], c[5:7][:, l])))

    def score(side: int, w: np.ndarray) -> float:
        total = 0.0
        for pair in sides:
            prob, n, t = pair[side]
            lab = np.argmax(prob * np.exp(w)[:, None], axis=0)
            total += sum(2.0 * t[k][lab == k].sum() / (n[lab == k].sum() + t[k].sum()) for k in range(len(w)))
        return total

    right = max(itertools.product(WEIGHT_GRID, WEIGHT_GRID), key=lambda ab: score(0, np.array([0.0, *ab])))
    left = max(WEIGHT_GRID, key=lambda a: score(1, np.array([0.0, a])))
    return (0.0, float(right[0]), float(right[1]), 0.0, float(left))


def load_cache(fold: int, part: str) -> dict[str, dict]:
    files = sorted((CACHE / f"fold{fold}_{part}").glob("*.npz"))
    out = {}
    for f in files:
        with np.load(f) as z:
            out[f.stem] = {k: z[k] for k in z.files}
    return out


def summary(dice: np.ndarray) -> dict:
    return {**{n: round(float(np.nanmean(dice[:, i])), 5) for i, n in enumerate(LOBES)},
            "mean_of_lobes": round(float(np.mean(np.nanmean(dice, axis=0))), 5)}


def select(folds: list[int]) -> dict:
    out = {}
    for fold in folds:
        cases = load_cache(fold, "val")
        t0 = time.process_time()
        base = np.array([evaluate(c, BASELINE) for c in cases.values()])
        rows = [{"variant": "argmax", **summary(base)}]
        for v in variants():
            if v["shift_tta"] and any(len(c["shifts"]) < len(SHIFTS) for c in cases.values()):
                continue  # shift runs cached for folds 1 and 2 only (7 network runs per map)
            if v["log_w"] == "tune":
                v = dict(v, log_w=tune_weights(list(cases.values())))
            d = np.array([evaluate(c, v) for c in cases.values()])
            rows.append({"variant": v["name"], "params": {k: v[k] for k in ("sigma_mm", "shift_tta", "cleanup", "log_w")},
                         **summary(d)})
        best = max(rows[1:], key=lambda r: r["mean_of_lobes"])
        gain = best["mean_of_lobes"] - rows[0]["mean_of_lobes"]
        out[str(fold)] = {"n_val": len(cases), "variants": rows, "best": best["variant"],
                          "best_params": best["params"], "gain": round(gain, 5), "adopted": bool(gain >= MIN_GAIN),
                          "cpu_s": round(time.process_time() - t0, 1)}
        print(f"fold {fold}: " + "; ".join(f"{r['variant']} {r['mean_of_lobes']:.4f}" for r in rows)
              + f" -> best {best['variant']} (+{gain:.4f}), adopted {gain >= MIN_GAIN}", flush=True)
    return out


def test(validation: dict) -> dict:
    """Each fold's plain arg-max, best validation variant and rule-chosen variant on its 50 test maps, pooled."""
    import lobes_cv  # benchmarks/lobes_cv.py: the same summary and bootstrap as the CV section

    pooled: dict[str, list[np.ndarray]] = {"argmax": [], "best_on_validation": [], "chosen": []}
    per_fold, per_case, max_diff = [], [], 0.0
    for fold in range(1, 6):
        sel = validation[str(fold)]
        best = dict(BASELINE, name=sel["best"], **sel["best_params"])
        cases = load_cache(fold, "test")
        if best["shift_tta"] and any(len(c["shifts"]) < len(SHIFTS) for c in cases.values()):
            raise SystemExit(f"fold {fold}: its chosen variant averages shifts; cache its test maps with --shifts 7")
        base = np.array([evaluate(c, BASELINE) for c in cases.values()])
        bestd = np.array([evaluate(c, best) for c in cases.values()])
        records = {r["case"]: r["dice"] for r in json.loads(
            (lobes_cv.RECORDS / f"cv_fold{fold}_heldout.json").read_text())["cases"]}
        for case, row in zip(cases, base):
            max_diff = max(max_diff, float(np.max(np.abs(row - np.array([records[case][n] for n in LOBES])))))
        per_case += [{"case": case, "fold": fold, "argmax": [round(float(x), 5) for x in a],
                      "best_on_validation": [round(float(x), 5) for x in b]} for case, a, b in zip(cases, base, bestd)]
        pooled["argmax"].append(base)
        pooled["best_on_validation"].append(bestd)
        pooled["chosen"].append(bestd if sel["adopted"] else base)
        per_fold.append({"fold": fold, "n_test": len(cases), "best_on_validation": sel["best"],
                         "adopted": sel["adopted"], "argmax": summary(base), "best_variant": summary(bestd)})
        print(f"fold {fold} test: argmax {summary(base)['mean_of_lobes']:.4f}, "
              f"{sel['best']} {summary(bestd)['mean_of_lobes']:.4f}", flush=True)
    out = {"per_fold": per_fold, "max_abs_dice_diff_vs_records": round(max_diff, 6)}
    for key, parts in pooled.items():
        d = np.concatenate(parts)
        out[key] = {"n_maps": len(d), "dice": lobes_cv.per_lobe(d),
                    "mean_of_lobes_bootstrap_95": lobes_cv.bootstrap_mean_of_lobes(d)}
    diff = np.concatenate(pooled["best_on_validation"]) - np.concatenate(pooled["argmax"])
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(diff), size=(2000, len(diff)))
    out["best_minus_argmax_mean_of_lobes"] = {
        "mean": float(np.nanmean(diff, axis=0).mean()),
        "bootstrap_95": [float(x) for x in np.percentile(np.nanmean(diff[idx], axis=1).mean(axis=1), [2.5, 97.5])]}
    records = lobes_cv.RECORDS / "cv_postproc_test_cases.jsonl"
    records.write_text("".join(json.dumps(row) + "\n" for row in per_case))
    out["cases"] = f"{records.relative_to(REPO)} (per map, Dice {', '.join(LOBES)})"
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=["cache", "select", "test"])
    p.add_argument("--fold", type=int, default=1)
    p.add_argument("--part", default="val")
    p.add_argument("--shifts", type=int, default=len(SHIFTS), help="cache: network runs per map (1 = centred only)")
    p.add_argument("--runs", type=Path, default=Path("/work/runs/lobes_cv"))
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_lobes_postproc.json")
    args = p.parse_args()
    if args.stage == "cache":
        cache(args.fold, args.part, args.runs, shifts=args.shifts)
    elif args.stage == "select":
        res = json.loads(args.out.read_text()) if args.out.exists() else {}
        res["date"] = "2026-12-03"
        res["min_gain"] = MIN_GAIN
        res["validation"] = select([0, 1, 2, 3, 4, 5])
        args.out.write_text(json.dumps(res, indent=1) + "\n")
    else:
        res = json.loads(args.out.read_text())
        res["test"] = test(res["validation"])
        args.out.write_text(json.dumps(res, indent=1) + "\n")
        t = res["test"]
        for key in ("argmax", "best_on_validation", "chosen"):
            d = t[key]["dice"]
            lo, hi = t[key]["mean_of_lobes_bootstrap_95"]
            print(f"{key}: mean of lobes {d['mean_of_lobes']:.5f} ({lo:.3f}-{hi:.3f}) "
                  + " ".join(f"{n} {d[n]['mean']:.4f}" for n in LOBES))
        print("Dice vs fold records, max abs diff", t["max_abs_dice_diff_vs_records"])


if __name__ == "__main__":
    main()
