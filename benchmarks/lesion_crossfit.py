"""Cross-fitted held-out Dice of "stage 6 + more patients" (issue 15).

The fit probe showed the lesion network's plateau is the gap between patients, so the lever
left is more patients, and the only labelled patients not trained on are the held-out blocks.
Cross-fitting measures the recipe on them anyway: fold A (``configs/lesions_crossfit_a.toml``)
trains on the first half of the held-out blocks and is scored on the second half, fold B the
other way round; each held-out slice is scored once, by the model that never saw it, and
against the shipped model (stage 6) on the same slices (pooled Dice, paired bootstrap over
slices). ``lesions_crossfit_all.toml`` trains the same recipe on everything: the model to ship
if the cross-fitted numbers beat stage 6. ``--control`` (``configs/lesions_crossfit_control.toml``:
the same recipe with no held-out slices added) scores both halves too, and the folds against it:
what more patients add beyond more training.

Usage::

    python benchmarks/lesion_crossfit.py --fold-a A.onnx --fold-b B.onnx [--control C.onnx] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: The halves of the held-out blocks: Zenodo slices ``[start, stop)`` (split at the case boundary
#: at 1442) and MedSeg files ``[from, to)``; the same numbers as the fold configs.
HALVES = {"A": ((1258, 1442), (47, 54)), "B": ((1442, 1614), (54, 68))}
#: Which fold's model scores which half: the one that did not train on it.
SCORED_BY = {"A": "fold_b", "B": "fold_a"}
MEASURES = ("zenodo_binary", "medseg_binary", "medseg_ggo", "medseg_consolidation")


def half_counts(model, root: Path, half: str) -> dict[str, np.ndarray]:
    """Per-slice (true positive, predicted, true) pixel counts of ``model`` on one half, flip TTA."""
    from pneumolens.train import data as D
    from pneumolens.train import evaluate as E

    zenodo_block, medseg_block = HALVES[half]
    zenodo = D.split_block(D.zenodo_indices(root, holdout=True), zenodo_block)[1]
    medseg = D.split_block([int(s) for s in D.medseg_names(root, holdout=True)], medseg_block)[1]
    z = E.evaluate_zenodo(model, root, indices=zenodo)
    m = E.evaluate_medseg(model, root, stems=[str(s) for s in medseg])
    return {
        "zenodo_binary": np.array(z["per_slice_counts"]),
        **{f"medseg_{k}": np.array(m[k]["per_slice_counts"]) for k in ("binary", "ggo", "consolidation")},
    }


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """Pooled Dice of a candidate and a reference (stage 6 or the control), the paired difference
    a - b and its bootstrap CI."""
    from pneumolens.validate.segmentation import (
        dice_bootstrap,
        dice_difference_bootstrap,
    )

    d, ca, cb = dice_difference_bootstrap(a, b), dice_bootstrap(a), dice_bootstrap(b)
    return {"slices": len(a), "candidate": ca.pooled, "candidate_ci95": list(ca.pooled_ci),
            "reference": cb.pooled, "reference_ci95": list(cb.pooled_ci),
            "difference": d["difference"], "difference_ci95": list(d["ci"]), "share_better": d["share_a_better"]}


def main() -> None:
    from pneumolens import models
    from pneumolens.runtime import prepare_for_analyses

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold-a", type=Path, required=True, help="ONNX of configs/lesions_crossfit_a.toml")
    parser.add_argument("--fold-b", type=Path, required=True, help="ONNX of configs/lesions_crossfit_b.toml")
    parser.add_argument("--control", type=Path, default=None, help="ONNX of configs/lesions_crossfit_control.toml")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    prepare_for_analyses()
    folds = {"fold_a": models.load(args.fold_a, threads=1), "fold_b": models.load(args.fold_b, threads=1)}
    shipped = models.load(models.LESION_MODEL, threads=1)
    result: dict = {"shipped": shipped.meta["sha256"], **{k: m.meta["sha256"] for k, m in folds.items()},
                    "halves": {h: {"zenodo": list(z), "medseg_files": list(m)} for h, (z, m) in HALVES.items()}}
    cand: dict[str, list[np.ndarray]] = {k: [] for k in MEASURES}
    base: dict[str, list[np.ndarray]] = {k: [] for k in MEASURES}
    for half, fold in SCORED_BY.items():
        c, b = half_counts(folds[fold], args.data, half), half_counts(shipped, args.data, half)
        result[f"half_{half}_by_{fold}"] = {k: compare(c[k], b[k]) for k in MEASURES}
        for k in MEASURES:
            cand[k].append(c[k])
            base[k].append(b[k])
    result["cross_fitted"] = {k: compare(np.concatenate(cand[k]), np.concatenate(base[k])) for k in MEASURES}
    tables = [k for k in result if k.startswith("half_")] + ["cross_fitted"]
    if args.control:
        control = models.load(args.control, threads=1)
        result["control"] = control.meta["sha256"]
        ctrl = [half_counts(control, args.data, half) for half in SCORED_BY]
        joined = {k: np.concatenate([c[k] for c in ctrl]) for k in MEASURES}
        result["control_vs_shipped"] = {k: compare(joined[k], np.concatenate(base[k])) for k in MEASURES}
        result["cross_fitted_vs_control"] = {k: compare(np.concatenate(cand[k]), joined[k]) for k in MEASURES}
        tables += ["control_vs_shipped", "cross_fitted_vs_control"]
    for key in tables:
        for k, r in result[key].items():
            print(f"{key:18s} {k:22s} n={r['slices']:3d} candidate {r['candidate']:.3f} reference {r['reference']:.3f} "
                  f"diff {r['difference']:+.3f} [{r['difference_ci95'][0]:+.3f}, {r['difference_ci95'][1]:+.3f}]")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
