"""Density-method fusion for diffuse ground glass (issue 15): does it help, and at what cost?

The model only partly calls diffuse ground glass lesion; the density method catches it (model
card, 3D inserted lesions). Fusion adds the density method's lesion voxels where the model's
probability is at least a floor (``evaluate.fuse_density``). The floor is chosen on the lesions
inserted into P002's right lung (8 cases) and then read on those inserted into lung1 and lung2
(16 cases), plus the false-positive volume on lung1 and lung2 without insertion.

Usage::

    python benchmarks/lesion_density_fusion.py [--floors 0.05 0.1 0.2 0.3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


#: Where the floor is chosen, and where it is then read (volume names of the inserted cases).
GROUPS = (("choose: P002 right lung", ("covid_ct_md_P002 (right lung)",)),
          ("read: lung1 + lung2", ("chest_ct_volumes/lung1", "chest_ct_volumes/lung2")))


def group_means(cases: list[dict], runs: list[str]) -> dict[str, dict[str, float]]:
    """Mean 3D Dice per run over the cases of each group of :data:`GROUPS`."""
    out = {}
    for group, names in GROUPS:
        rows = [r for r in cases if r["volume"] in names]
        if not rows:
            raise ValueError(f"no inserted cases for {group}: volumes are {sorted({r['volume'] for r in cases})}")
        out[group] = {run: float(np.nanmean([r[run]["dice"] for r in rows])) for run in runs}
        out[group]["cases"] = len(rows)
    return out


def p002_agreement(model, root: Path, floors: list[float], *, min_ml: float = 0.05) -> dict:
    """Real data: P002's lesion mL and per-slice agreement with the radiologists' slice labels
    (a slice is called infected above ``min_ml``), model alone and fused at each floor."""
    from pneumolens.config import Config
    from pneumolens.pipeline import analyze
    from pneumolens.train import evaluate as E

    scan = E.load_p002(root)
    m = analyze(scan, Config(lesion_weights=model.path))
    d = analyze(scan, Config(method="density"))
    truth = E.p002_slice_labels(root, scan).astype(bool)
    ml = float(np.prod(scan.spacing)) / 1000.0
    out = {}
    for name, labels in [("model", m.lesions.labels), *((f"fused_{f:g}", E.fuse_density(m.lesions, d.lesions, f)) for f in floors)]:
        called = (labels > 0).sum(axis=(1, 2)) * ml > min_ml
        out[name] = {"lesion_ml": float((labels > 0).sum() * ml),
                     "sensitivity": float(called[truth].mean()), "specificity": float((~called[~truth]).mean()),
                     "label0_slices_with_lesion": int(called[~truth].sum())}
        print("P002", name, {k: round(v, 3) for k, v in out[name].items()})
    return out


def main() -> None:
    from pneumolens import models
    from pneumolens.config import Config
    from pneumolens.io import load_scan
    from pneumolens.pipeline import analyze
    from pneumolens.runtime import prepare_for_analyses
    from pneumolens.train import evaluate as E

    prepare_for_analyses()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floors", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model = models.load(models.LESION_MODEL)
    inserted = E.evaluate_inserted_3d(model, args.data, fusion_floors=args.floors)
    runs = ["model", "density", *(f"fused_{f:g}" for f in args.floors)]
    table = group_means(inserted["cases"], runs)
    for group, means in table.items():
        print(group, {k: round(v, 3) for k, v in means.items()})
    normal = {}
    for name in ("lung1", "lung2"):
        scan = load_scan(args.data / "chest_ct_volumes" / f"{name}_image.nrrd")
        m = analyze(scan, Config(lesion_weights=model.path))
        d = analyze(scan, Config(method="density"))
        ml = float(np.prod(scan.spacing)) / 1000.0
        normal[name] = {"model": float((m.lesions.labels > 0).sum() * ml)}
        for f in args.floors:
            normal[name][f"fused_{f:g}"] = float((E.fuse_density(m.lesions, d.lesions, f) > 0).sum() * ml)
        print(name, "false-positive mL", {k: round(v, 1) for k, v in normal[name].items()})
    p002 = p002_agreement(model, args.data, args.floors)
    patterns = {}
    for r in inserted["cases"]:
        patterns.setdefault(f"{r['volume']} {r['pattern']}", []).append(r)
    by_pattern = {k: {run: float(np.nanmean([r[run]["dice"] for r in v])) for run in runs} for k, v in patterns.items()}
    if args.json:
        args.json.write_text(json.dumps({"groups": table, "normal_lungs_ml": normal, "p002": p002, "by_pattern": by_pattern,
                                         "inserted": inserted}, indent=1) + "\n")


if __name__ == "__main__":
    main()
