"""``pneumolens segment-slices IMAGES_DIR --out DIR``: the lesion model on 2D slice images.

For researchers with slice data sets (PNG/JPG axial slices in a lung window): writes one mask
PNG per image (0 background, 1 ground-glass, 2 consolidation; same file stem, ``.png``) and
``lesions.csv`` with the lesion area per image in pixels (total, GGO, consolidation), the crop
used and the model (name and version, for comparing weights), through the one output writer
(:func:`pneumolens.export.writer.output_dir`).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from pneumolens.cli.options import add_model_options, add_output_options, tell

CSV_NAME = "lesions.csv"
CSV_FIELDS = ("image", "mask", "lesion_px", "ggo_px", "consolidation_px", "lesion_fraction", "max_probability", "crop", "model")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment-slices",
        help="segment lesions in 2D PNG/JPG axial slices (lung window) with the lesion model",
        description="Segment ground-glass and consolidation in 2D axial slices (PNG/JPG, lung window): "
        "a mask PNG per image (0 background, 1 GGO, 2 consolidation) and lesions.csv with areas.",
    )
    parser.add_argument("images_dir", type=Path, metavar="IMAGES_DIR", help="folder of PNG/JPG slices")
    add_output_options(parser)
    add_model_options(parser)
    parser.add_argument("--threshold", type=float, default=0.5, help="lesion probability threshold (default 0.5)")
    parser.add_argument(
        "--crop", choices=("auto", "whole", "lungs"), default="auto",
        help="how each image is cropped for the network: 'whole' for crops around the chest (MedSeg / Inf-Net "
        "style), 'lungs' for whole axial slices (boxed by their lungs), 'auto' (default) decides per image; "
        "lesions.csv says what was used",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from pneumolens import models
    from pneumolens.export.writer import check_out_dir, output_dir
    from pneumolens.io.images import list_images, read_image
    from pneumolens.lesions.model import segment_slice_images, slice_box
    from pneumolens.models.preprocess import full_box

    files = list_images(args.images_dir)
    check_out_dir(args.out, overwrite=args.overwrite)
    model = models.load(args.weights or models.LESION_MODEL, threads=args.threads)
    model_label = f"{model.name} {model.version}"  # the same on every row
    rows = []
    with output_dir(args.out, overwrite=args.overwrite) as tmp:
        chunk = 32  # bounded memory on large folders
        for i in range(0, len(files), chunk):
            batch = files[i : i + chunk]
            images = [read_image(p) for p in batch]
            boxes = [slice_box(im, margin=model.preprocessing.box_margin, crop=args.crop) for im in images]
            results = segment_slice_images(images, weights=model, boxes=boxes, threshold=args.threshold,
                                           flip_tta=not args.no_tta)
            for path, res, box, im in zip(batch, results, boxes, images):
                mask_name = f"{path.stem}.png"
                Image.fromarray(res.labels).save(tmp / mask_name)
                n_ggo, n_cons = int((res.labels == 1).sum()), int((res.labels == 2).sum())
                rows.append(
                    {
                        "image": path.name,
                        "mask": mask_name,
                        "lesion_px": n_ggo + n_cons,
                        "ggo_px": n_ggo,
                        "consolidation_px": n_cons,
                        "lesion_fraction": f"{(n_ggo + n_cons) / res.labels.size:.6f}",
                        "max_probability": f"{float(res.probability.max()):.4f}",
                        "crop": "whole" if box == full_box(im.shape) else "lungs",
                        "model": model_label,
                    }
                )
        with (tmp / CSV_NAME).open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    tell(f"{len(rows)} masks and {CSV_NAME} written to {args.out}")
    return 0
