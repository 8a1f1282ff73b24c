"""Training and validation slices for the lesion model, all in the shared input normalisation.

Sources (see ``docs/models/lesion_unet2d.md`` for counts and licences):

- ``covid_seg_2d_zenodo``: 1614 CLAHE-processed slices of 20 patients with infection masks
  (binary). Case ids were lost; the slices are in case order and the case boundaries show up as
  jumps of the lung mask between neighbouring slices. The held-out block starts at such a
  boundary (slice 1258, 4 whole cases), so no patient is on both sides.
- ``covid_seg_2d_medseg``: 50 lung-window crops with GGO / consolidation labels. Held out: the
  highest-numbered files (a contiguous block of the source numbering).
- HU volumes (``chest_ct_volumes`` lung1/lung2, the 20-slice Siemens series) with lesions
  inserted by :mod:`pneumolens.train.insertion`, plus some untouched slices as negatives.
  ``covid_ct_md_P002`` is the test volume and is never read here.

Every sample is an ``(S, S)`` float32 network input and an ``(S, S)`` uint8 target with a kind:
``BINARY`` (0 background / 1 lesion, supervises P(GGO) + P(consolidation)) or ``MULTICLASS``
(0 / 1 GGO / 2 consolidation), and its extent: the share of the slice's lungs that is lesion
(NaN where no lung mask exists), so that extensive disease can be drawn more often.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pneumolens.io.images import read_image
from pneumolens.models.preprocess import (
    Box,
    full_box,
    prepare_label,
    prepare_slice,
    square_box,
    window_hu,
)
from pneumolens.train.insertion import insert_lesions, lung_mask_2d

logger = logging.getLogger(__name__)

BINARY = 0
MULTICLASS = 1

ZENODO_HOLDOUT_START = 1258
MEDSEG_HOLDOUT_FROM = 47
HU_VOLUME_FILES = (
    "chest_ct_volumes/lung1_image.nrrd",
    "chest_ct_volumes/lung2_image.nrrd",
    "dicom_samples/siemens_20slice_series",
)
FORBIDDEN = ("covid_ct_md_P002",)


@dataclass
class SampleSet:
    """Stacked samples: ``images`` (N, S, S) float32, ``targets`` (N, S, S) uint8, ``kinds`` (N,),
    ``extents`` (N,) float32 lesion share of the lungs (NaN: unknown)."""

    images: np.ndarray
    targets: np.ndarray
    kinds: np.ndarray
    names: list[str] = field(default_factory=list)
    extents: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.extents is None:
            self.extents = np.full(len(self.kinds), np.nan, np.float32)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @classmethod
    def empty(cls, size: int) -> SampleSet:
        return cls(np.zeros((0, size, size), np.float32), np.zeros((0, size, size), np.uint8), np.zeros(0, np.int8))

    @classmethod
    def stack(cls, items: Sequence[tuple[str, np.ndarray, np.ndarray, int, float]], size: int) -> SampleSet:
        if not items:
            return cls.empty(size)
        names, imgs, tgts, kinds, extents = zip(*items)
        return cls(np.stack(imgs), np.stack(tgts), np.asarray(kinds, np.int8), list(names), np.asarray(extents, np.float32))


def lesion_extent(lesion: np.ndarray, lungs: np.ndarray) -> float:
    """Share of the lung pixels that are lesion (NaN without lungs)."""
    n = int(np.count_nonzero(lungs))
    return float(np.count_nonzero(lesion)) / n if n else float("nan")


def read_gray(path: Path) -> np.ndarray:
    """8-bit grey image (:func:`pneumolens.io.images.read_image`, mode ``"gray8"``)."""
    return read_image(path, mode="gray8")


def read_palette(path: Path) -> np.ndarray:
    """Stored values of a palette image: the class labels."""
    return read_image(path, mode="labels")


def zenodo_indices(root: Path, *, holdout: bool, limit: int | None = None, step: int = 1) -> list[int]:
    """Slice numbers of the Zenodo training block or held-out block."""
    n = len(list((root / "covid_seg_2d_zenodo" / "ct").glob("*.png")))
    idx = list(range(ZENODO_HOLDOUT_START, n)) if holdout else list(range(min(ZENODO_HOLDOUT_START, n)))
    idx = idx[::step]
    return idx[:limit] if limit else idx


def split_block(items: Sequence[int], block: Sequence[int]) -> tuple[list[int], list[int]]:
    """``items`` outside and inside the half-open block ``[start, stop)`` (a validation block)."""
    if len(block) != 2 or block[0] >= block[1]:
        raise ValueError(f"a validation block is [start, stop) with start < stop, got {list(block)}")
    inside = [i for i in items if block[0] <= i < block[1]]
    return [i for i in items if not block[0] <= i < block[1]], inside


class ZenodoSlice(NamedTuple):
    """One Zenodo slice: image in [0, 1], lung and infection masks (bool), and its crop box."""

    name: str
    image: np.ndarray
    lungs: np.ndarray
    infection: np.ndarray
    box: Box


def read_zenodo_slice(root: Path, index: int) -> ZenodoSlice:
    """Slice ``index`` of ``covid_seg_2d_zenodo``, boxed by its lung mask (whole image without one)."""
    base = root / "covid_seg_2d_zenodo"
    name = f"{index:04d}.png"
    image = read_gray(base / "ct" / name).astype(np.float32) / 255.0
    lungs = read_gray(base / "lungs" / name) > 127
    infection = read_gray(base / "covid" / name) > 127
    box = square_box(lungs) if lungs.any() else full_box(image.shape)
    return ZenodoSlice(name, image, lungs, infection, box)


def load_zenodo(root: Path, indices: Iterable[int], size: int) -> SampleSet:
    """Zenodo slices cropped to their lung box, with binary infection targets."""
    items = []
    for i in indices:
        s = read_zenodo_slice(root, i)
        target = prepare_label(s.infection.astype(np.uint8), s.box, size)
        items.append((f"zenodo/{s.name}", prepare_slice(s.image, s.box, size), target, BINARY, lesion_extent(s.infection, s.lungs)))
    return SampleSet.stack(items, size)


def medseg_names(root: Path, *, holdout: bool, limit: int | None = None) -> list[str]:
    """MedSeg multiclass file stems, numerically sorted, training or held-out block."""
    stems = sorted((p.stem for p in (root / "covid_seg_2d_medseg" / "multiclass" / "Imgs").glob("*.jpg")), key=int)
    sel = [s for s in stems if (int(s) >= MEDSEG_HOLDOUT_FROM) == holdout]
    return sel[:limit] if limit else sel


def load_medseg(root: Path, stems: Iterable[str], size: int) -> SampleSet:
    """MedSeg crops (already around the lungs) padded to a square, with 3-class targets."""
    base = root / "covid_seg_2d_medseg" / "multiclass"
    items = []
    for s in stems:
        img = read_gray(base / "Imgs" / f"{s}.jpg").astype(np.float32) / 255.0
        gt = read_palette(base / "GT" / f"{s}.png").astype(np.uint8)
        box = full_box(img.shape)
        items.append((f"medseg/{s}", prepare_slice(img, box, size), prepare_label(gt, box, size), MULTICLASS, np.nan))
    return SampleSet.stack(items, size)


def read_hu_volume(path: Path) -> tuple[np.ndarray, float]:
    """A HU volume ``(Z, Y, X)`` and its in-plane pixel size (NRRD/NIfTI file or DICOM folder)."""
    import SimpleITK as sitk

    if any(f in str(path) for f in FORBIDDEN):
        raise ValueError(f"{path} is the held-out test volume and must not be used for training")
    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path)))
        image = reader.Execute()
    else:
        image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image).astype(np.float32), float(image.GetSpacing()[0])


def inserted_samples(
    volumes: Sequence[tuple[str, np.ndarray, float]],
    size: int,
    *,
    variants: int,
    negative_fraction: float,
    seed: int,
    min_lung_fraction: float = 0.03,
    volume_box: bool = False,
    min_negative_fraction: float = 0.0,
    diffuse_fraction: float = 0.0,
) -> SampleSet:
    """Slices of HU volumes with lesions inserted (``variants`` per slice) plus clean negatives.

    ``volume_box``: crop every slice with the square box of the whole volume's lungs, as
    inference does (else each slice's own lung box). Slices whose lung mask covers less than
    ``min_lung_fraction`` of the image get no lesions; those above ``min_negative_fraction``
    (> 0) are kept once, clean, as negatives (lung bases and apices, bowel gas).
    ``diffuse_fraction``: share of the lesioned variants drawn as diffuse disease (the other
    patterns at random otherwise).
    """
    rng = np.random.default_rng(seed)
    items = []
    for name, vol, pixel_mm in volumes:
        masks = [lung_mask_2d(vol[z], pixel_mm=pixel_mm) for z in range(vol.shape[0])]
        box3d = square_box(np.stack(masks)) if volume_box else None
        for z, lungs in enumerate(masks):
            hu, frac = vol[z], float(lungs.mean())
            box = box3d if box3d is not None else (square_box(lungs) if lungs.any() else full_box(hu.shape))
            if frac < min_lung_fraction:
                if min_negative_fraction > 0 and frac >= min_negative_fraction:
                    clean = prepare_slice(window_hu(hu), box, size)
                    items.append((f"{name}/z{z}neg", clean, np.zeros((size, size), np.uint8), MULTICLASS, 0.0))
                continue
            for v in range(variants):
                if rng.random() < negative_fraction:
                    img, lab = hu, np.zeros(hu.shape, np.uint8)
                else:
                    # Only draw when asked: the earlier recipes' random streams stay as they were.
                    diffuse = diffuse_fraction > 0 and rng.random() < diffuse_fraction
                    ins = insert_lesions(hu, lungs, pixel_mm=pixel_mm, rng=rng, pattern="diffuse" if diffuse else None)
                    img, lab = ins.hu, ins.labels
                items.append(
                    (
                        f"{name}/z{z}v{v}",
                        prepare_slice(window_hu(img), box, size),
                        prepare_label(lab, box, size),
                        MULTICLASS,
                        lesion_extent(lab, lungs),
                    )
                )
    logger.info("inserted samples: %d", len(items))
    return SampleSet.stack(items, size)


def concat(sets: Sequence[SampleSet], size: int) -> SampleSet:
    sets = [s for s in sets if len(s)]
    if not sets:
        return SampleSet.empty(size)
    return SampleSet(
        np.concatenate([s.images for s in sets]),
        np.concatenate([s.targets for s in sets]),
        np.concatenate([s.kinds for s in sets]),
        [n for s in sets for n in s.names],
        np.concatenate([s.extents for s in sets]),
    )
