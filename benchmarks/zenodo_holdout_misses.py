"""What the lesion model misses on the held-out Zenodo patients, as a picture.

For chosen held-out slices of ``covid_seg_2d_zenodo`` (needs ``../shared/data``) it draws the
slice with the model's lesion mask against the radiologists' infection mask: found (green),
missed (red), extra (blue), with the slice Dice and the share of the lungs the lesion covers.

    python benchmarks/zenodo_holdout_misses.py --figure docs/img/zenodo_holdout_misses.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pneumolens import models
from pneumolens.lesions.model import segment_slice_images
from pneumolens.train import data as D
from pneumolens.validate.segmentation import dice

REPO = Path(__file__).resolve().parents[1]
# Three slices with extensive and three with focal disease, from the four held-out patients.
SLICES = (1420, 1520, 1540, 1300, 1440, 1590)
FOUND, MISSED, EXTRA = (0.1, 0.8, 0.1), (0.9, 0.1, 0.1), (0.2, 0.4, 1.0)


def overlay(image: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """RGB of a [0, 1] slice with found / missed / extra lesion pixels coloured."""
    rgb = np.repeat(image[..., None], 3, axis=2)
    for sel, colour in ((pred & truth, FOUND), (truth & ~pred, MISSED), (pred & ~truth, EXTRA)):
        rgb[sel] = 0.45 * rgb[sel] + 0.55 * np.asarray(colour)
    return rgb


def draw(root: Path, weights: str | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    model = models.load(weights or models.LESION_MODEL)
    fig, axes = plt.subplots(2, 3, figsize=(9, 6.4))
    for ax, i in zip(axes.ravel(), SLICES):
        s = D.read_zenodo_slice(root, i)
        pred = segment_slice_images([s.image], weights=model, boxes=[s.box])[0].labels > 0
        ax.imshow(overlay(s.image, pred, s.infection))
        extent = 100 * D.lesion_extent(s.infection, s.lungs)
        ax.set_title(f"slice {i}: lesion {extent:.0f} % of lungs, Dice {dice(pred, s.infection):.2f}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{model.name} {model.meta.get('version', '')} on held-out Zenodo slices: "
                 "green found, red missed, blue extra", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--weights", default=None, help="ONNX file (default: the shipped model)")
    parser.add_argument("--figure", type=Path, required=True)
    args = parser.parse_args()
    draw(args.data, args.weights, args.figure)
    print(args.figure)


if __name__ == "__main__":
    main()
