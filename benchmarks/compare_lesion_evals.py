"""Compare two lesion-model evaluations (JSON of ``python -m pneumolens.train.evaluate``).

``python benchmarks/compare_lesion_evals.py NEW.json OLD.json [--names v2 shipped]`` prints a
markdown table: pooled and per-slice Dice with bootstrap CIs per data block, the paired
bootstrap difference NEW - OLD of the pooled Dice (same resampled slices), P002 slice AUC and
lesion mL on the normal lungs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pneumolens.validate.segmentation import dice_difference_bootstrap

BLOCKS = (
    ("zenodo_holdout", None, "Zenodo test block (1258-1613, 4 patients)"),
    ("medseg_holdout", "binary", "MedSeg test files 47-67, binary"),
    ("medseg_holdout", "ggo", "MedSeg test, GGO"),
    ("medseg_holdout", "consolidation", "MedSeg test, consolidation"),
    ("zenodo_validation", None, "Zenodo validation block (1081-1257)"),
    ("medseg_validation", "binary", "MedSeg validation files 40-46, binary"),
    ("medseg_validation", "ggo", "MedSeg validation, GGO"),
    ("medseg_validation", "consolidation", "MedSeg validation, consolidation"),
    ("zenodo_training_every_6", None, "Zenodo training slices (every 6th of 0-1080)"),
)


def _block(result: dict, key: str, sub: str | None) -> dict | None:
    block = result.get(key)
    if block is None:
        return None
    if sub is None:
        return {"pooled": block["dice_binary_pooled"], "mean": block["dice_binary_mean_per_slice"], **block}
    return {"pooled": block[f"dice_{sub}_pooled"], "mean": block[f"dice_{sub}_mean_per_slice"], **block[sub]}


def table(new: dict, old: dict, names: tuple[str, str]) -> str:
    a, b = names
    lines = [
        f"| data | slices | {a} pooled [95 % CI] | {b} pooled [95 % CI] | {a} - {b} pooled [95 % CI] | {a} per slice [CI] | {b} per slice [CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, sub, label in BLOCKS:
        x, y = _block(new, key, sub), _block(old, key, sub)
        if x is None or y is None:
            continue
        d = dice_difference_bootstrap(np.array(x["per_slice_counts"]), np.array(y["per_slice_counts"]))
        ci = lambda r, k: f"[{r[k][0]:.3f}, {r[k][1]:.3f}]"
        lines.append(
            f"| {label} | {len(x['per_slice_counts'])} | {x['pooled']:.3f} {ci(x, 'pooled_ci95')} | "
            f"{y['pooled']:.3f} {ci(y, 'pooled_ci95')} | {d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] | "
            f"{x['mean']:.3f} {ci(x, 'mean_per_slice_ci95')} | {y['mean']:.3f} {ci(y, 'mean_per_slice_ci95')} |"
        )
    pa, pb = new.get("covid_ct_md_P002"), old.get("covid_ct_md_P002")
    if pa and pb:
        lines.append(f"| P002 slice AUC (max probability) | {pa['slices']} | {pa['auc']['max']:.3f} | {pb['auc']['max']:.3f} | | | |")
        lines.append(f"| P002 label-0 slices with a lesion | | {pa['lesion_slices_without_infection_label']} | {pb['lesion_slices_without_infection_label']} | | | |")
    for name in (new.get("normal_lungs") or {}):
        na, nb = new["normal_lungs"][name], old["normal_lungs"].get(name, {})
        if "lesion_ml" in na and "lesion_ml" in nb:
            lines.append(f"| {name}: false-positive lesion mL (% of lung) | | {na['lesion_ml']:.1f} ({na['lesion_percent_of_lung']:.2f} %) | "
                         f"{nb['lesion_ml']:.1f} ({nb['lesion_percent_of_lung']:.2f} %) | | | |")
    ta, tb = new.get("timing_512x512x150"), old.get("timing_512x512x150")
    if ta and tb:
        lines.append(f"| 512x512x150 lungs + lesions, s | | {ta['total']:.2f} (lesions {ta['lesions']:.2f}) | {tb['total']:.2f} (lesions {tb['lesions']:.2f}) | | | |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("new", type=Path)
    ap.add_argument("old", type=Path)
    ap.add_argument("--names", nargs=2, default=("new", "old"))
    args = ap.parse_args()
    print(table(json.loads(args.new.read_text()), json.loads(args.old.read_text()), tuple(args.names)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
