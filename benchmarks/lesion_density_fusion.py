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
    table = {}
    for group, names in (("choose: P002 right lung", {"covid_ct_md_P002"}), ("read: lung1 + lung2", {"lung1", "lung2"})):
        rows = [r for r in inserted["cases"] if r["volume"] in names]
        table[group] = {run: float(np.nanmean([r[run]["dice"] for r in rows])) for run in runs}
        table[group]["cases"] = len(rows)
        print(group, {k: round(v, 3) for k, v in table[group].items()})
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
    patterns = {}
    for r in inserted["cases"]:
        patterns.setdefault(f"{r['volume']} {r['pattern']}", []).append(r)
    by_pattern = {k: {run: float(np.nanmean([r[run]["dice"] for r in v])) for run in runs} for k, v in patterns.items()}
    if args.json:
        args.json.write_text(json.dumps({"groups": table, "normal_lungs_ml": normal, "by_pattern": by_pattern,
                                         "inserted": inserted}, indent=1) + "\n")


if __name__ == "__main__":
    main()
