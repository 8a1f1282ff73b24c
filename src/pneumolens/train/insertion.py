"""Pneumonia-like lesions inserted into real HU CT slices, with known masks.

Used to give the lesion model HU-domain training cases with a ground-glass / consolidation
split (the real 2D sets are windowed or CLAHE-processed, and only 50 slices carry the split).

Shapes follow the typical distribution of viral and bacterial pneumonia on CT (Bernheim et al.,
Radiology 2020, doi 10.1148/radiol.2020200463; Shi et al., Lancet Infect Dis 2020): peripheral
subpleural patches, multifocal scattered foci, lobar/dependent consolidation, and diffuse
bilateral ground-glass with crazy paving (severe COVID-19, ARDS). Intensities:
ground-glass raises lung attenuation to about -750..-400 HU while vessels stay visible (the
maximum of the lesion field and the original), consolidation replaces the parenchyma with
about -100..+50 HU soft tissue that hides the vessels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pneumolens.masks import CONSOLIDATION, GGO
from pneumolens.models.preprocess import enclosed_regions

#: Patterns drawn at random (``pattern=None``) with these probabilities.
RANDOM_PATTERNS = ("peripheral", "multifocal", "lobar")
RANDOM_WEIGHTS = (0.45, 0.35, 0.2)
#: Every pattern; "diffuse" only when asked for, so the random draws of the earlier recipes stay.
PATTERNS = (*RANDOM_PATTERNS, "diffuse")
#: 3D only, only when asked for: scattered small solid nodules (about 6-14 mm).
PATTERNS_3D = (*PATTERNS, "nodules")


@dataclass(frozen=True)
class InsertedSlice:
    """A HU slice with inserted lesions and their labels (0 none, 1 GGO, 2 consolidation)."""

    hu: np.ndarray
    labels: np.ndarray
    pattern: str


def lung_mask_2d(hu: np.ndarray, *, pixel_mm: float, threshold_hu: float = -400.0) -> np.ndarray:
    """Rough lung mask of one axial HU slice: air inside the body, border air removed.

    Good enough to place synthetic lesions (not a lung segmentation for analysis).
    """
    # Pockets under 3 cm^2 are bowel gas or noise, not lung.
    return enclosed_regions(hu < threshold_hu, min_pixels=int(300.0 / pixel_mm**2))


def _smooth_noise(
    shape: tuple[int, ...], sigma: float | tuple[float, ...], rng: np.random.Generator
) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / (field.std() + 1e-6)


def _blob(shape: tuple[int, int], centre: tuple[float, float], radius_px: float, rng: np.random.Generator) -> np.ndarray:
    """Soft irregular blob in [0, 1]: a noisy ellipse."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    ay, ax = radius_px * rng.uniform(0.6, 1.4), radius_px * rng.uniform(0.6, 1.4)
    theta = rng.uniform(0, np.pi)
    dy, dx = yy - centre[0], xx - centre[1]
    ry = (dy * np.cos(theta) - dx * np.sin(theta)) / ay
    rx = (dy * np.sin(theta) + dx * np.cos(theta)) / ax
    r = np.sqrt(ry**2 + rx**2)
    wobble = 0.35 * _smooth_noise(shape, max(radius_px / 3.0, 1.0), rng)
    return np.clip((1.0 - (r + wobble)) * 3.0, 0.0, 1.0)


def _diffuse(lungs: np.ndarray, spacing: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Soft region covering 40-95 % of ``lungs`` (2D or 3D), patchy and denser posteriorly.

    A smooth noise field (about 12 mm blobs) plus a gradient towards the dependent side (larger
    y), cut at the quantile that gives the drawn coverage; spared lobules stay as holes.
    """
    if not lungs.any():
        return np.zeros(lungs.shape, np.float32)
    field = _smooth_noise(lungs.shape, tuple(12.0 / sp for sp in spacing), rng)
    ys = np.nonzero(lungs.any(axis=tuple(a for a in range(lungs.ndim) if a != lungs.ndim - 2)))[0]
    y = np.arange(lungs.shape[-2], dtype=np.float32).reshape((-1, 1))
    field += rng.uniform(0.0, 1.5) * (y - ys[0]) / max(ys[-1] - ys[0], 1)
    cut = np.quantile(field[lungs], 1.0 - rng.uniform(0.4, 0.95))
    return np.clip((field - cut) * 3.0, 0.0, 1.0) * lungs


def _region(lungs: np.ndarray, pattern: str, pixel_mm: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Soft regions (one per focus) inside ``lungs`` for the given pattern."""
    shape = lungs.shape
    coords = np.argwhere(lungs)
    if pattern == "diffuse":
        return [_diffuse(lungs, (pixel_mm, pixel_mm), rng)]
    if pattern == "lobar":
        # Dependent (posterior, larger y) part of one lung, with an irregular front.
        lab, n = ndimage.label(lungs)
        sizes = ndimage.sum_labels(lungs, lab, index=np.arange(1, n + 1))
        pick = int(rng.choice(np.arange(1, n + 1), p=sizes / sizes.sum()))
        lung = lab == pick
        ys = np.nonzero(lung.any(axis=1))[0]
        cut = ys[0] + rng.uniform(0.35, 0.8) * (ys[-1] - ys[0])
        yy = np.mgrid[: shape[0], : shape[1]][0].astype(np.float32)
        front = yy - cut + 6.0 * _smooth_noise(shape, 10.0 / pixel_mm, rng) / pixel_mm
        return [np.clip(front / 3.0, 0.0, 1.0) * lung]
    if pattern == "peripheral":
        dist_mm = ndimage.distance_transform_edt(lungs) * pixel_mm
        coords = np.argwhere(lungs & (dist_mm < 12.0))
        n_foci, radius_mm = rng.integers(1, 4), (8.0, 30.0)
    else:
        n_foci, radius_mm = rng.integers(3, 9), (4.0, 14.0)
    if coords.size == 0:
        return []
    regions = []
    for _ in range(int(n_foci)):
        cy, cx = coords[rng.integers(len(coords))]
        regions.append(_blob(shape, (cy, cx), rng.uniform(*radius_mm) / pixel_mm, rng) * lungs)
    return regions


def _choose_pattern(pattern: str | None, rng: np.random.Generator, allowed: tuple[str, ...] = PATTERNS) -> str:
    if pattern is None:
        pattern = str(rng.choice(RANDOM_PATTERNS, p=list(RANDOM_WEIGHTS)))
    if pattern not in allowed:
        raise ValueError(f"pattern must be one of {allowed}, got {pattern!r}")
    return pattern


#: Lesion kinds, and their probabilities per pattern when not asked for.
KINDS = ("ggo", "consolidation", "mixed")
KIND_WEIGHTS = {"default": [0.55, 0.15, 0.30], "lobar": [0.25, 0.45, 0.30], "diffuse": [0.6, 0.05, 0.35]}


def _paint(
    out: np.ndarray,
    labels: np.ndarray,
    soft: np.ndarray,
    lungs: np.ndarray,
    *,
    pattern: str,
    noise: np.ndarray,
    rng: np.random.Generator,
    sigma: Callable[[float], float | tuple[float, ...]],
    pixel_mm: float,
    kind: str | None = None,
) -> None:
    """Paint one soft region into ``out`` (HU) and ``labels`` in place (2D or 3D).

    ``sigma`` turns a smoothing width in in-plane pixels into the per-axis sigma of the array
    (identity in 2D; a smaller z sigma for thicker slices in 3D).
    """
    soft = ndimage.gaussian_filter(soft.astype(np.float32), sigma(1.0)) * lungs
    if kind is None:
        kind = rng.choice(list(KINDS), p=KIND_WEIGHTS.get(pattern, KIND_WEIGHTS["default"]))
    texture = _smooth_noise(out.shape, sigma(rng.uniform(1.0, 3.0)), rng)
    ggo_hu = rng.uniform(-750.0, -420.0) + 45.0 * texture + noise
    if pattern == "diffuse" and rng.random() < 0.6:
        # Crazy paving: thickened interlobular septa, a bright network of ~1 cm cells over the
        # ground glass (zero crossings of a smooth field).
        septa = np.abs(_smooth_noise(out.shape, sigma(3.0 / pixel_mm), rng)) < 0.1
        ggo_hu = ggo_hu + septa * rng.uniform(80.0, 200.0)
    cons_hu = rng.uniform(-90.0, 50.0) + 20.0 * texture + noise
    if kind in ("ggo", "mixed"):
        out += soft * (np.maximum(out, ggo_hu) - out)
        labels[(soft > 0.5) & (labels == 0)] = GGO
    if kind in ("consolidation", "mixed"):
        # Mixed: consolidated patches inside the ground glass (fewer in diffuse disease).
        core = soft if kind == "consolidation" else np.clip((soft - 0.6) * 2.5, 0.0, 1.0) * (
            _smooth_noise(out.shape, sigma(4.0), rng) > (1.0 if pattern == "diffuse" else -0.3)
        )
        core = ndimage.gaussian_filter(core.astype(np.float32), sigma(0.7))
        # Air bronchograms: thin branching air lines kept inside consolidation.
        bronchi = np.abs(_smooth_noise(out.shape, sigma(3.0), rng)) < 0.06
        cons = np.where(bronchi & (rng.random() < 0.5), out, cons_hu)
        out += core * (cons - out)
        labels[core > 0.5] = CONSOLIDATION


def insert_lesions(
    hu: np.ndarray,
    lungs: np.ndarray,
    *,
    pixel_mm: float,
    rng: np.random.Generator,
    pattern: str | None = None,
) -> InsertedSlice:
    """Insert pneumonia-like lesions into one HU slice.

    Parameters
    ----------
    hu
        ``(Y, X)`` slice in HU (not modified).
    lungs
        ``(Y, X)`` boolean lung mask of the slice.
    pixel_mm
        In-plane pixel size in mm.
    rng
        Random generator (the caller owns the seed).
    pattern
        One of :data:`PATTERNS`; random when ``None``.

    Returns
    -------
    InsertedSlice
        HU with lesions (float32) and uint8 labels (1 GGO, 2 consolidation), inside ``lungs``.
    """
    pattern = _choose_pattern(pattern, rng)
    out = np.asarray(hu, dtype=np.float32).copy()
    labels = np.zeros(hu.shape, dtype=np.uint8)
    noise = 18.0 * rng.standard_normal(hu.shape).astype(np.float32)
    for soft in _region(lungs, pattern, pixel_mm, rng):
        _paint(out, labels, soft, lungs, pattern=pattern, noise=noise, rng=rng, sigma=lambda s: s, pixel_mm=pixel_mm)
    labels[~lungs] = 0
    return InsertedSlice(hu=out, labels=labels, pattern=pattern)


# ---------------------------------------------------------------- 3D
@dataclass(frozen=True)
class InsertedVolume:
    """A HU volume with 3D lesions inserted, their labels and how many foci were drawn."""

    hu: np.ndarray
    labels: np.ndarray
    pattern: str
    foci: int


def _blob_3d(
    lungs: np.ndarray, centre: np.ndarray, radius_mm: float, spacing: tuple[float, float, float], rng: np.random.Generator
) -> tuple[tuple[slice, ...], np.ndarray]:
    """Soft irregular ellipsoid (rotated in the axial plane) in a box around ``centre``."""
    ay, ax, az = (radius_mm * rng.uniform(0.6, 1.4) for _ in range(3))
    theta = rng.uniform(0, np.pi)
    half = [int(np.ceil(3.1 * radius_mm / sp)) for sp in spacing]  # covers radius x 1.4 plus wobble
    box = tuple(slice(max(0, int(c) - h), min(n, int(c) + h + 1)) for c, h, n in zip(centre, half, lungs.shape))
    dz, dy, dx = (
        (np.arange(b.start, b.stop, dtype=np.float32) - c) * sp
        for b, c, sp in zip(box, centre, spacing)
    )
    dz, dy, dx = dz[:, None, None], dy[None, :, None], dx[None, None, :]
    ry = (dy * np.cos(theta) - dx * np.sin(theta)) / ay
    rx = (dy * np.sin(theta) + dx * np.cos(theta)) / ax
    r = np.sqrt(ry**2 + rx**2 + (dz / az) ** 2)
    shape = tuple(b.stop - b.start for b in box)
    wobble = 0.35 * _smooth_noise(shape, tuple(max(radius_mm / 3.0 / sp, 0.5) for sp in spacing), rng)
    return box, np.clip((1.0 - (r + wobble)) * 3.0, 0.0, 1.0) * lungs[box]


def _regions_3d(
    lungs: np.ndarray,
    pattern: str,
    spacing: tuple[float, float, float],
    rng: np.random.Generator,
    near: np.ndarray | None = None,
) -> list[tuple[tuple[slice, ...], np.ndarray]]:
    """Soft 3D regions ``(box, soft)`` inside ``lungs`` for the given pattern."""
    if pattern == "diffuse":
        box = tuple(slice(0, n) for n in lungs.shape)
        return [(box, _diffuse(lungs, spacing, rng))]
    if pattern == "lobar":
        # Dependent (posterior) part of the lower half of one lung, with an irregular front.
        lab, n = ndimage.label(lungs)
        if n == 0:
            return []
        sizes = ndimage.sum_labels(lungs, lab, index=np.arange(1, n + 1))
        pick = int(rng.choice(np.arange(1, n + 1), p=sizes / sizes.sum()))
        box = ndimage.find_objects((lab == pick).astype(np.uint8))[0]
        lung = lab[box] == pick
        z_cut = rng.uniform(0.35, 0.65) * lung.shape[0]  # canonical z: index 0 is most inferior
        y_cut = rng.uniform(0.35, 0.8) * lung.shape[1]
        zz = np.arange(lung.shape[0], dtype=np.float32)[:, None, None]
        yy = np.arange(lung.shape[1], dtype=np.float32)[None, :, None]
        wobble_mm = 6.0 * _smooth_noise(lung.shape, tuple(10.0 / sp for sp in spacing), rng)
        front_mm = np.minimum((yy - y_cut) * spacing[1], (z_cut - zz) * spacing[0]) + wobble_mm
        return [(box, np.clip(front_mm / (3.0 * spacing[1]), 0.0, 1.0) * lung)]
    if pattern == "nodules":
        n_foci, radius_mm = int(rng.integers(12, 30)), (3.0, 7.0)
    elif pattern == "peripheral":
        n_foci, radius_mm = int(rng.integers(1, 4)), (10.0, 30.0)
    else:
        n_foci, radius_mm = int(rng.integers(3, 9)), (5.0, 14.0)
    if near is None:
        near = _subpleural(lungs, spacing[1:]) if pattern == "peripheral" else lungs
    near = near & lungs
    candidates = np.flatnonzero(near)
    if candidates.size == 0:
        return []
    regions = []
    for _ in range(n_foci):
        centre = np.array(np.unravel_index(candidates[rng.integers(candidates.size)], lungs.shape))
        regions.append(_blob_3d(lungs, centre, rng.uniform(*radius_mm), spacing, rng))
    return regions


def _subpleural(lungs: np.ndarray, pixel_mm: tuple[float, float], depth_mm: float = 10.0) -> np.ndarray:
    """Lung voxels within ``depth_mm`` of the lung border in their axial slice."""
    out = np.zeros(lungs.shape, dtype=bool)
    for z in np.flatnonzero(lungs.any(axis=(1, 2))):
        out[z] = lungs[z] & (ndimage.distance_transform_edt(lungs[z], sampling=pixel_mm) < depth_mm)
    return out


def insert_lesions_3d(
    hu: np.ndarray,
    lungs: np.ndarray,
    *,
    spacing: Sequence[float],
    rng: np.random.Generator,
    pattern: str | None = None,
    kind: str | None = None,
    near: np.ndarray | None = None,
) -> InsertedVolume:
    """Insert pneumonia-like lesions that extend across slices into a HU volume.

    The same textures and HU as :func:`insert_lesions`, drawn as 3D regions: subpleural
    ellipsoids ("peripheral"), scattered foci ("multifocal"), the dependent lower part of one
    lung ("lobar"), or patchy ground glass through most of both lungs ("diffuse"). Work is done in boxes around each region, so a 512x512x300 volume is fine.

    Parameters
    ----------
    hu
        ``(Z, Y, X)`` volume in HU (not modified); canonical order, index 0 most inferior.
    lungs
        ``(Z, Y, X)`` boolean mask where lesions may go.
    spacing
        Voxel size ``(z, y, x)`` in mm.
    rng, pattern
        As for :func:`insert_lesions`; ``pattern="nodules"`` (3D only) draws 12-29 small round
        solid nodules of about 6-14 mm diameter scattered through ``lungs``.
    kind
        ``"ggo"``, ``"consolidation"`` or ``"mixed"`` for every focus; drawn per focus when
        ``None`` (nodules are always consolidation).
    near
        Boolean mask where focus centres are drawn (focal patterns only); ``None``: the
        pattern's own rule (subpleural for "peripheral", anywhere in ``lungs`` otherwise).

    Returns
    -------
    InsertedVolume
        float32 HU with lesions and uint8 labels (1 GGO, 2 consolidation), inside ``lungs``.
    """
    pattern = _choose_pattern(pattern, rng, PATTERNS_3D)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if pattern == "nodules":
        kind = "consolidation"
    hu, lungs = np.asarray(hu), np.asarray(lungs, dtype=bool)
    if hu.ndim != 3 or lungs.shape != hu.shape:
        raise ValueError(f"hu and lungs must be 3D arrays of one shape, got {hu.shape} and {lungs.shape}")
    sp = tuple(float(s) for s in spacing)
    out = hu.astype(np.float32, copy=True)
    labels = np.zeros(hu.shape, dtype=np.uint8)
    regions = _regions_3d(lungs, pattern, sp, rng, near=near)

    def sigma(s: float) -> tuple[float, float, float]:  # in-plane pixels -> per-axis voxels
        return (s * sp[1] / sp[0], s, s)

    for box, soft in regions:
        sub_out, sub_labels = out[box], labels[box]  # views: painted in place
        noise = 18.0 * rng.standard_normal(soft.shape).astype(np.float32)
        _paint(
            sub_out, sub_labels, soft, lungs[box],
            pattern=pattern, noise=noise, rng=rng, sigma=sigma, pixel_mm=sp[1], kind=kind,
        )
    labels[~lungs] = 0
    return InsertedVolume(hu=out, labels=labels, pattern=pattern, foci=len(regions))


# ---------------------------------------------------------------- pleural effusion (3D)
@dataclass(frozen=True)
class InsertedEffusion:
    """A HU volume with a pleural effusion inserted; ``mask`` is the fluid, ``volume_ml`` its volume."""

    hu: np.ndarray
    mask: np.ndarray
    volume_ml: float


#: The lung mask's partial-volume rim against the chest wall: voxels outside the mask, up to
#: this far (mm, in-plane) from the fluid, still partly aerated (below ``PLEURAL_RIM_HU``).
PLEURAL_RIM_MM = 3.0
PLEURAL_RIM_HU = -200.0


def _pleural_rim(hu: np.ndarray, lung: np.ndarray, fluid: np.ndarray, level_y: np.ndarray, *, pixel_mm: float) -> np.ndarray:
    """The partly aerated rim between ``fluid`` (inside ``lung``) and the chest wall.

    A lung mask stops a voxel or two short of the chest wall (partial volume of lung and wall).
    Free pleural fluid lies against the parietal pleura (Hansell et al. 2008, "pleural
    effusion"): it displaces the lung from the wall, so no aerated voxel stays between the fluid
    and the wall. The rim: voxels outside ``lung`` below :data:`PLEURAL_RIM_HU`, within
    :data:`PLEURAL_RIM_MM` in-plane of the fluid, at or below the fluid surface ``level_y[z]``.
    """
    yy = np.arange(lung.shape[1])[None, :, None]
    allowed = ~lung & (np.asarray(hu) < PLEURAL_RIM_HU) & (yy >= level_y[:, None, None])
    cross = ndimage.generate_binary_structure(2, 1)[None]
    grown = ndimage.binary_dilation(fluid, structure=cross, iterations=max(1, round(PLEURAL_RIM_MM / pixel_mm)), mask=allowed | fluid)
    return grown & ~fluid


def insert_effusion_3d(
    hu: np.ndarray,
    lung: np.ndarray,
    *,
    spacing: Sequence[float],
    rng: np.random.Generator,
    depth_mm: tuple[float, float] = (20.0, 45.0),
    fluid_hu: tuple[float, float] = (0.0, 20.0),
) -> InsertedEffusion:
    """Insert a free pleural effusion in the dependent pleural space of one lung (supine patient).

    Free fluid layers in the most dependent (posterior) part of the hemithorax with a level
    (horizontal) surface: in each slice, the lung voxels within ``d(z)`` mm of the lung's most
    posterior point (in y) become fluid, which gives the posterior crescent with its lateral
    meniscus of the radiology texts (e.g. Hansell et al. 2008, "pleural effusion"). ``d`` is the
    drawn maximum (in ``depth_mm``) over the lower 30 % of the lung's height and falls linearly
    to 0 at 75 %. Fluid HU: a level drawn in ``fluid_hu`` plus 12 HU noise. The fluid replaces
    the lung it occupies (compression) and the lung mask's partly aerated rim between it and the
    chest wall (:func:`_pleural_rim`: free fluid lies against the parietal pleura), so its
    volume is known exactly.
    """
    hu, lung = np.asarray(hu), np.asarray(lung, dtype=bool)
    if hu.ndim != 3 or lung.shape != hu.shape:
        raise ValueError(f"hu and lung must be 3D arrays of one shape, got {hu.shape} and {lung.shape}")
    sp = tuple(float(s) for s in spacing)
    zs = np.flatnonzero(lung.any(axis=(1, 2)))
    mask = np.zeros(lung.shape, dtype=bool)
    level_y = np.full(lung.shape[0], lung.shape[1], dtype=np.float64)  # fluid surface (y) per slice
    if zs.size:
        max_depth = rng.uniform(*depth_mm)
        height = zs[-1] - zs[0] + 1
        yy = np.arange(lung.shape[1])[:, None]
        for z in zs:
            t = (z - zs[0]) / height
            d = max_depth * float(np.clip((0.75 - t) / 0.45, 0.0, 1.0))
            if d <= 0:
                break
            y_back = np.flatnonzero(lung[z].any(axis=1))[-1]
            level_y[z] = y_back - d / sp[1]
            mask[z] = lung[z] & (yy >= level_y[z])
        mask |= _pleural_rim(hu, lung, mask, level_y, pixel_mm=sp[1])
    out = hu.astype(np.float32, copy=True)
    level = rng.uniform(*fluid_hu)
    # Noise drawn for the lung part only (the rim reuses those values), so the random stream,
    # and what a scenario draws after the effusion, does not depend on the rim.
    noise = 12.0 * rng.standard_normal(int((mask & lung).sum())).astype(np.float32)
    if noise.size:
        out[mask & lung] = level + noise
        out[mask & ~lung] = level + np.resize(noise, int((mask & ~lung).sum()))
    return InsertedEffusion(hu=out, mask=mask, volume_ml=float(mask.sum()) * float(np.prod(sp)) / 1000.0)


# ---------------------------------------------------------------- reading scenarios (3D)
#: Scenarios with the category a radiologist gives them under the RSNA consensus (Simpson et
#: al. 2020): bilateral peripheral ground glass is "typical"; unilateral lobar consolidation with
#: a pleural effusion and scattered small nodules are "atypical".
SCENARIOS = {
    "bilateral_peripheral_ggo": "typical",
    "lobar_consolidation_effusion": "atypical",
    "scattered_nodules": "atypical",
}


@dataclass(frozen=True)
class InsertedScenario:
    """A HU volume with a scenario inserted: lesion labels, effusion mask and volume (mL)."""

    hu: np.ndarray
    labels: np.ndarray
    effusion: np.ndarray
    effusion_ml: float
    scenario: str
    side: int | None


def _costal(lung: np.ndarray, spacing: Sequence[float], depth_mm: float = 10.0) -> np.ndarray:
    """Subpleural voxels (within ``depth_mm`` in-plane) of one lung's lateral half: under the
    costal pleura, away from the mediastinum (the "peripheral" of the radiology texts)."""
    xs = np.flatnonzero(lung.any(axis=(0, 1)))
    if xs.size == 0:
        return lung
    x_mid = 0.5 * (xs[0] + xs[-1])
    x = np.arange(lung.shape[2])
    midline = lung.shape[2] / 2.0
    lateral = (x < x_mid) if x_mid < midline else (x > x_mid)
    return _subpleural(lung, tuple(spacing)[1:], depth_mm) & lateral[None, None, :]


def insert_scenario_3d(
    hu: np.ndarray,
    lung_labels: np.ndarray,
    *,
    spacing: Sequence[float],
    rng: np.random.Generator,
    scenario: str,
) -> InsertedScenario:
    """Insert one reading scenario of :data:`SCENARIOS` into a HU volume with lung labels (1 R, 2 L).

    * ``bilateral_peripheral_ggo``: ground-glass foci centred under the costal pleura of each
      lung (within 10 mm of the border, lateral half of the lung).
    * ``lobar_consolidation_effusion``: a pleural effusion of 15-30 mm (:func:`insert_effusion_3d`)
      and consolidation of the dependent lower part of the rest of the same lung ("lobar").
    * ``scattered_nodules``: 12-29 solid nodules of about 6-14 mm in both lungs ("nodules").
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {tuple(SCENARIOS)}, got {scenario!r}")
    lung_labels = np.asarray(lung_labels)
    out = np.asarray(hu, dtype=np.float32)
    labels = np.zeros(lung_labels.shape, dtype=np.uint8)
    effusion = np.zeros(lung_labels.shape, dtype=bool)
    side = None
    if scenario == "bilateral_peripheral_ggo":
        for s in (1, 2):
            lung = lung_labels == s
            ins = insert_lesions_3d(
                out, lung, spacing=spacing, rng=rng, pattern="peripheral", kind="ggo", near=_costal(lung, spacing)
            )
            out, labels = ins.hu, np.maximum(labels, ins.labels)
    elif scenario == "scattered_nodules":
        ins = insert_lesions_3d(out, lung_labels > 0, spacing=spacing, rng=rng, pattern="nodules")
        out, labels = ins.hu, ins.labels
    else:
        side = int(rng.integers(1, 3))
        lung = lung_labels == side
        # The fluid layers first; the consolidated lower lung lies on it (what is left of the
        # lung's dependent lower part), so neither hides the other.
        eff = insert_effusion_3d(out, lung, spacing=spacing, rng=rng, depth_mm=(15.0, 30.0))
        ins = insert_lesions_3d(eff.hu, lung & ~eff.mask, spacing=spacing, rng=rng, pattern="lobar", kind="consolidation")
        out, labels, effusion = ins.hu, ins.labels, eff.mask
    ml = float(effusion.sum()) * float(np.prod(spacing)) / 1000.0
    return InsertedScenario(hu=out, labels=labels, effusion=effusion, effusion_ml=ml, scenario=scenario, side=side)
