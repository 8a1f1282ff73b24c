"""``pneumolens segment-slices IMAGES_DIR --out DIR``: the lesion model on 2D slice images.

For researchers with slice data sets (PNG/JPG axial slices in a lung window): writes one mask
PNG per image (0 background, 1 ground-glass, 2 consolidation; same file stem, ``.png``) and
``lesions.csv`` with the lesion area per image in pixels (total, GGO, consolidation). Output is
written to a temporary folder beside ``--out`` and renamed at the end, so a failure leaves no
partial results.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

import numpy as np

from pneumolens.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CSV_NAME = "lesions.csv"
CSV_FIELDS = ("image", "mask", "lesion_px", "ggo_px", "consolidation_px", "lesion_fraction", "max_probability")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment-slices",
        help="segment lesions in 2D PNG/JPG axial slices (lung window) with the lesion model",
        description="Segment ground-glass and consolidation in 2D axial slices (PNG/JPG, lung window): "
        "a mask PNG per image (0 background, 1 GGO, 2 consolidation) and lesions.csv with areas.",
    )
    parser.add_argument("images_dir", type=Path, metavar="IMAGES_DIR", help="folder of PNG/JPG slices")
    parser.add_argument("--out", required=True, type=Path, help="output folder (must not exist or be empty)")
    parser.add_argument("--weights", type=Path, default=None, help="other ONNX weights (sidecar .json beside them)")
    parser.add_argument("--threshold", type=float, default=0.5, help="lesion probability threshold (default 0.5)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = default)")
    parser.set_defaults(func=run)


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` (not recursive), sorted by name."""
    if not folder.is_dir():
        raise InputError("images folder not found", where=folder, todo="pass a folder of PNG or JPG slices")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(
            "no PNG/JPG images in the folder", where=folder, todo=f"put axial slices with suffix {IMAGE_SUFFIXES} there"
        )
    stems = [p.stem for p in files]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise InputError(
            f"several images share a name stem ({', '.join(dupes[:5])}), their masks would overwrite each other",
            where=folder,
            todo="rename them so each stem is unique",
        )
    return files


def read_gray01(path: Path) -> np.ndarray:
    """An image as grey levels in ``[0, 1]`` (8- or 16-bit, colour converted to luminance)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I"):
                arr = np.asarray(im, dtype=np.float32)
                return arr / max(float(arr.max()), 1.0)
            return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image ({exc})", where=path, todo="remove or replace the file") from None


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from pneumolens import models
    from pneumolens.lesions.model import segment_slice_images

    files = list_images(args.images_dir)
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        raise InputError("output folder is not empty", where=out, todo="choose a new folder or empty it")
    model = models.load(args.weights or models.LESION_MODEL, threads=args.threads)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".segment-slices-", dir=out.parent))
    try:
        rows = []
        chunk = 32  # bounded memory on large folders
        for i in range(0, len(files), chunk):
            batch = files[i : i + chunk]
            results = segment_slice_images(
                [read_gray01(p) for p in batch], weights=model, threshold=args.threshold
            )
            for path, res in zip(batch, results):
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
                    }
                )
        with (tmp / CSV_NAME).open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        if out.exists():
            out.rmdir()  # empty, checked above
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"{len(rows)} masks and {CSV_NAME} written to {out}")
    return 0
