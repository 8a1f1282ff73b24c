"""How `segment-slices` crops 2D images, before and after the edge rule (issue 15).

`pneumolens segment-slices` has no lung mask, so it boxes each image itself
(``lesions.model.slice_box``). Before 2026-12-03 an image was boxed by its dark enclosed regions
whenever they covered 5 % of it, which also re-boxed 12 of the 50 MedSeg images although they
are already crops around the chest (training takes them whole). Now an image whose rough lungs
reach within ``CROP_EDGE_FRACTION`` of an edge is taken whole. This scores both rules, pooled
Dice with the shipped model (flip TTA), on the validation blocks (``--blocks validation``: where
the rule was chosen) or the test blocks (``--blocks test``: read once, after the choice).

Usage::

    python benchmarks/segment_slices_crops.py --blocks validation|test [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def old_box(image01: np.ndarray):
    """The rule before 2026-12-03: boxed by the rough lungs whenever they cover 5 % of the image."""
    from pneumolens.lesions.model import rough_lung_mask_8bit
    from pneumolens.models import preprocess as pp

    rough = rough_lung_mask_8bit(image01)
    return pp.square_box(rough, margin=pp.BOX_MARGIN) if rough.mean() >= 0.05 else pp.full_box(image01.shape)


def _masks(labels: list[np.ndarray], truths: list[np.ndarray], cls: int | None) -> tuple[list, list]:
    """Predicted and true masks of lesion (``cls`` None) or of class ``cls``."""
    if cls is None:
        return [p > 0 for p in labels], [g > 0 for g in truths]
    return [p == cls for p in labels], [g == cls for g in truths]


def main() -> None:
    from pneumolens import models
    from pneumolens.lesions.model import segment_slice_images, slice_box
    from pneumolens.models.preprocess import full_box
    from pneumolens.train import data as D
    from pneumolens.train import evaluate as E
    from pneumolens.train.evaluate import dice_with_ci, pooled_dice
    from pneumolens.validate.segmentation import dice_difference_bootstrap

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", choices=("validation", "test"), required=True)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    root = args.data
    model = models.load(models.LESION_MODEL, threads=1)
    base = root / "covid_seg_2d_medseg" / "multiclass"
    if args.blocks == "validation":
        stems = D.split_block([int(s) for s in D.medseg_names(root, holdout=False)], E.MEDSEG_VALIDATION)[1]
        zenodo_idx = D.split_block(D.zenodo_indices(root, holdout=False), E.ZENODO_VALIDATION)[1]
    else:
        stems = D.medseg_names(root, holdout=True)
        zenodo_idx = D.zenodo_indices(root, holdout=True, step=4)  # the card's segment-slices check
    images = [D.read_gray(base / "Imgs" / f"{s}.jpg").astype(np.float32) / 255.0 for s in stems]
    truths = [D.read_palette(base / "GT" / f"{s}.png") for s in stems]
    zen = [D.read_zenodo_slice(root, i) for i in zenodo_idx]
    result: dict = {"blocks": args.blocks, "model": model.meta["sha256"], "medseg_files": [str(s) for s in stems],
                    "zenodo_slices": len(zen)}
    counts = {}
    for rule, box in (("before", old_box), ("edge rule", slice_box)):
        med = [r.labels for r in segment_slice_images(images, weights=model, boxes=[box(im) for im in images])]
        zl = [r.labels for r in segment_slice_images([s.image for s in zen], weights=model, boxes=[box(s.image) for s in zen])]
        pairs = {"medseg_binary": _masks(med, truths, None), "medseg_ggo": _masks(med, truths, 1),
                 "medseg_consolidation": _masks(med, truths, 2),
                 "zenodo_binary": _masks(zl, [s.infection for s in zen], None)}
        result[rule], counts[rule] = {}, {}
        for k, (preds, gts) in pairs.items():
            scored = dice_with_ci(preds, gts)
            result[rule][k], result[rule][k + "_ci95"] = pooled_dice(preds, gts), scored["pooled_ci95"]
            counts[rule][k] = np.array(scored["per_slice_counts"])
        result[rule]["medseg_boxed"] = int(sum(box(im) != full_box(im.shape) for im in images))
        print(rule, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result[rule].items() if "ci95" not in k})
    result["difference"] = {}
    for k in counts["before"]:
        d = dice_difference_bootstrap(counts["edge rule"][k], counts["before"][k])
        result["difference"][k] = {"difference": d["difference"], "ci95": list(d["ci"])}
        print(k, f"edge rule - before {d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
