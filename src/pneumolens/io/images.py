"""2D slice images (PNG/JPG): the one reader of image files, for slices and for label masks.

Used by ``segment-slices`` (axial slices in a lung window), ``evaluate-seg`` (PNG masks) and the
training data (Zenodo/MedSeg slices and masks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumolens.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_images(folder: str | Path) -> list[Path]:
    """Image files of ``folder`` (not recursive), sorted by name, with unique name stems.

    Raises
    ------
    InputError
        The folder is missing, holds no images, or two images share a stem.
    """
    folder = Path(folder)
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


def read_image(path: str | Path, *, mode: str = "gray01") -> np.ndarray:
    """Read a 2D image file.

    Parameters
    ----------
    path
        PNG or JPG file.
    mode
        ``"gray01"``: grey levels as float32 in ``[0, 1]`` (8- or 16-bit; colour converted to
        luminance, ITU-R 601-2 as in Pillow's ``convert("L")``); ``"gray8"``: uint8 luminance;
        ``"labels"``: the stored values unchanged (palette indices are class labels).

    Raises
    ------
    InputError
        The file cannot be read as an image.
    """
    from PIL import Image, UnidentifiedImageError

    if mode not in ("gray01", "gray8", "labels"):
        raise ValueError(f"mode must be 'gray01', 'gray8' or 'labels', got {mode!r}")
    try:
        with Image.open(path) as im:
            if mode == "labels":
                return np.asarray(im)
            if mode == "gray8":
                return np.asarray(im.convert("L"))
            if im.mode in ("I;16", "I;16B", "I"):
                arr = np.asarray(im, dtype=np.float32)
                return arr / max(float(arr.max()), 1.0)
            return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image ({exc})", where=path, todo="remove or replace the file") from None
