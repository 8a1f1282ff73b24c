"""Deterministic CT phantoms with known masks, for tests, demos and benchmarks.

A phantom is built in physical millimetres and then sampled on the requested grid, so the same
``seed`` gives the same anatomy at any voxel size (1 mm and 5 mm slices of one "patient").
Everything is painted inside bounding boxes, so a 512x512x300 chest phantom takes a few seconds::

    >>> from pneumolens.synthetic import make_chest_phantom
    >>> p = make_chest_phantom(shape=(40, 64, 64), spacing=(5.0, 3.0, 3.0), seed=1)
    >>> p.volume.dtype, p.volume.shape
    (dtype('int16'), (40, 64, 64))

Arrays follow the project convention ``[z, y, x]``, LPS: z inferior->superior, y
anterior->posterior, x patient right->left, so the right lung sits at small x indices.
HU values (air -1000, fat -100, soft tissue 40, bone 400-1000, lung -870..-830 with a gravity
gradient, ground-glass -650..-300, consolidation -100..+50) follow textbook ranges
(e.g. Hansell et al., Fleischner Society glossary, Radiology 2008, doi 10.1148/radiol.2462070712).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pneumolens.masks import CONSOLIDATION, GGO, LEFT_LUNG, RIGHT_LUNG

LESION_KINDS = ("ggo", "consolidation", "pleural")

AIR_HU = -1000
FAT_HU = -100
SOFT_HU = 40
BLOOD_HU = 45
RIB_HU = 700
CORTEX_HU = 1000
MARROW_HU = 400
LUNG_HU_ANTERIOR = -870
LUNG_HU_POSTERIOR = -830
TRACHEA_DIAMETER_MM = 18.0


@dataclass(frozen=True)
class Phantom:
    """A synthetic CT volume and its ground truth, all on the ``(Z, Y, X)`` grid.

    Attributes
    ----------
    volume
        ``int16`` HU, canonical LPS layout.
    spacing
        Voxel size ``(z, y, x)`` in mm.
    lung_labels
        ``uint8``: 0 outside, 1 right lung (small x index), 2 left lung. Vessels and lesions
        inside the lungs belong to the lung; trachea and main bronchi do not.
    lesion_labels
        ``uint8``: 0 none, 1 ground-glass opacity, 2 consolidation (the pleural lesion is a
        consolidation).
    airways
        ``bool``: lumen of the trachea and main bronchi.
    vessels
        ``bool``: intrapulmonary vessel tree.
    """

    volume: np.ndarray
    spacing: tuple[float, float, float]
    lung_labels: np.ndarray
    lesion_labels: np.ndarray
    airways: np.ndarray
    vessels: np.ndarray

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0


def _in_ellipsoid(coords, center: np.ndarray, radii: np.ndarray) -> np.ndarray:
    z, y, x = coords
    return ((z - center[0]) / radii[0]) ** 2 + ((y - center[1]) / radii[1]) ** 2 + (
        (x - center[2]) / radii[2]
    ) ** 2 <= 1.0


class _Canvas:
    """An HU volume plus millimetre coordinates; primitives are evaluated in bounding boxes."""

    def __init__(self, shape: Sequence[int], spacing: Sequence[float], fill: int):
        if len(shape) != 3 or min(shape) < 8:
            raise ValueError(f"phantom shape must be 3 sizes >= 8 voxels (Z, Y, X), got {tuple(shape)}")
        if len(spacing) != 3 or min(spacing) <= 0:
            raise ValueError(f"phantom spacing must be 3 positive mm values (z, y, x), got {tuple(spacing)}")
        self.shape = tuple(int(s) for s in shape)
        self.spacing = tuple(float(s) for s in spacing)
        self.hu = np.full(self.shape, fill, dtype=np.int16)
        # Voxel-centre coordinates in mm along z, y, x.
        self.axes = [(np.arange(n) + 0.5) * s for n, s in zip(self.shape, self.spacing)]
        self.extent = np.array([n * s for n, s in zip(self.shape, self.spacing)])

    def box(self, lo: Sequence[float], hi: Sequence[float]):
        """Index slices and broadcastable mm coordinates covering ``[lo, hi]`` (mm, z y x)."""
        sl = []
        for a, (l, h), s, n in zip(range(3), zip(lo, hi), self.spacing, self.shape):
            i0 = max(int(np.floor(l / s - 0.5)), 0)
            i1 = min(int(np.ceil(h / s + 0.5)) + 1, n)
            sl.append(slice(i0, max(i0, i1)))
        z, y, x = (ax[s] for ax, s in zip(self.axes, sl))
        return tuple(sl), (z[:, None, None], y[None, :, None], x[None, None, :])

    def ellipsoid(self, center: Sequence[float], radii: Sequence[float]):
        """Slices and boolean mask (in the box) of an axis-aligned ellipsoid."""
        c, r = np.asarray(center, float), np.asarray(radii, float)
        sl, coords = self.box(c - r, c + r)
        return sl, _in_ellipsoid(coords, c, r)

    def capsule(self, p0: Sequence[float], p1: Sequence[float], radius: float):
        """Slices and boolean mask of the tube of ``radius`` mm around segment p0-p1 (mm)."""
        a, b = np.asarray(p0, float), np.asarray(p1, float)
        sl, (z, y, x) = self.box(np.minimum(a, b) - radius, np.maximum(a, b) + radius)
        d = b - a
        length2 = max(float(d @ d), 1e-9)
        t = np.clip(((z - a[0]) * d[0] + (y - a[1]) * d[1] + (x - a[2]) * d[2]) / length2, 0.0, 1.0)
        dist2 = (z - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (x - a[2] - t * d[2]) ** 2
        return sl, dist2 <= radius**2

    def full(self, sl: tuple[slice, ...], inside: np.ndarray) -> np.ndarray:
        """``inside`` (a box mask) as a full-size boolean volume."""
        out = np.zeros(self.shape, dtype=bool)
        out[sl] = np.broadcast_to(inside, out[sl].shape)
        return out

    def paint(self, sl, inside, value, where: np.ndarray | None = None) -> None:
        """Set HU to ``value`` (scalar or box array) where ``inside`` (and ``where``, full-size)."""
        target = self.hu[sl]
        m = np.broadcast_to(inside, target.shape)
        if where is not None:
            m = m & where[sl]
        if np.ndim(value):
            target[m] = np.broadcast_to(value, target.shape)[m]
        else:
            target[m] = value

    def elliptic_cylinder(self, center_yx: Sequence[float], radii_yx: Sequence[float]) -> np.ndarray:
        """2D ``(Y, X)`` mask of an ellipse, to be repeated along z."""
        y, x = self.axes[1][:, None], self.axes[2][None, :]
        return ((y - center_yx[0]) / radii_yx[0]) ** 2 + ((x - center_yx[1]) / radii_yx[1]) ** 2 <= 1.0

    def finish(self, rng: np.random.Generator, noise_hu: float) -> np.ndarray:
        """Add white Gaussian noise slab by slab (bounded memory) and return int16 HU."""
        out = self.hu
        if noise_hu > 0:
            step = max(1, 4_000_000 // (self.shape[1] * self.shape[2]))
            for k in range(0, self.shape[0], step):
                slab = out[k : k + step].astype(np.float32)
                slab += rng.standard_normal(slab.shape, dtype=np.float32) * np.float32(noise_hu)
                np.clip(np.rint(slab), -1024, 3071, out=slab)
                out[k : k + step] = slab.astype(np.int16)
        return out


def _texture(rng: np.random.Generator, shape: tuple[int, ...], spacing: Sequence[float], lo: float, hi: float,
             *, grain_mm: float = 3.0) -> np.ndarray:
    """Smooth random texture with values spread over ``[lo, hi]`` HU (mottled opacities)."""
    field = rng.standard_normal(shape).astype(np.float32)
    sigma = [max(grain_mm / s, 0.3) for s in spacing]
    field = ndimage.gaussian_filter(field, sigma)
    sd = float(field.std()) or 1.0
    return np.clip((lo + hi) / 2 + field / sd * (hi - lo) / 4, lo, hi)


def _body_and_wall(c: _Canvas) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Paint body, fat rim, sternum, ribs, spine. Returns the 2D body mask, centre and radii."""
    ext = c.extent
    cy, cx = ext[1] * 0.5, ext[2] * 0.5
    ry, rx = ext[1] * 0.37, ext[2] * 0.45
    body = c.elliptic_cylinder((cy, cx), (ry, rx))
    fat_mm = 0.03 * ext[2]
    inner = c.elliptic_cylinder((cy, cx), (ry - fat_mm, rx - fat_mm))
    c.hu[:, body] = FAT_HU
    c.hu[:, inner] = SOFT_HU
    # Ribs: elliptic bone rings every ~0.1 of the height, open anteriorly (costal cartilage).
    ring_out = c.elliptic_cylinder((cy, cx), (ry * 0.93, rx * 0.93))
    ring_in = c.elliptic_cylinder((cy, cx), (ry * 0.88, rx * 0.885))
    y = c.axes[1][:, None]
    ring = ring_out & ~ring_in & (y > cy - 0.6 * ry)
    rib_height = max(0.025 * ext[0], 6.0)
    for zc in np.arange(0.12, 0.95, 0.10) * ext[0]:
        ks = (np.abs(c.axes[0] - zc) <= rib_height / 2).nonzero()[0]
        if ks.size:
            c.hu[ks[:, None], ring] = RIB_HU
    # Sternum (anterior) and vertebral body with cortex and canal (posterior), full height.
    sternum = c.elliptic_cylinder((cy - ry * 0.86, cx), (ry * 0.06, rx * 0.07))
    c.hu[:, sternum] = RIB_HU
    vy, vr = cy + ry * 0.62, 0.055 * ext[2]
    vert = c.elliptic_cylinder((vy, cx), (vr, vr))
    marrow = c.elliptic_cylinder((vy, cx), (vr - 2.5, vr - 2.5))
    canal = c.elliptic_cylinder((vy + vr * 1.35, cx), (vr * 0.4, vr * 0.4))
    c.hu[:, vert] = CORTEX_HU
    c.hu[:, marrow] = MARROW_HU
    c.hu[:, canal] = 20
    return body, (cy, cx), (ry, rx)


def _lung_geometry(c: _Canvas) -> dict[str, np.ndarray]:
    """Centres and radii (mm) of the lungs, heart, trachea path, hila."""
    ez, ey, ex = c.extent
    cy, cx = ey * 0.5, ex * 0.5
    lung_r = np.array([0.40 * ez, 0.23 * ey, 0.13 * ex])
    lung_zc = 0.45 * ez
    g = {
        "right": np.array([lung_zc, cy + 0.03 * ey, cx - 0.20 * ex]),
        "left": np.array([lung_zc, cy + 0.03 * ey, cx + 0.20 * ex]),
        "lung_r": lung_r,
        "heart": np.array([0.28 * ez, cy - 0.07 * ey, cx + 0.05 * ex]),
        "heart_r": np.array([0.16 * ez, 0.15 * ey, 0.13 * ex]),
        "trachea_top": np.array([ez + 5.0, cy - 0.06 * ey, cx]),
        "carina": np.array([0.62 * ez, cy - 0.03 * ey, cx]),
    }
    # Main bronchi end ~8 mm inside the medial lung surface, the right one steeper and shorter.
    g["right_hilum"] = np.array([0.55 * ez, cy - 0.01 * ey, cx - 0.20 * ex + lung_r[2] * 0.62])
    g["left_hilum"] = np.array([0.52 * ez, cy, cx + 0.20 * ex - lung_r[2] * 0.62])
    return g


def _vessel_tree(c: _Canvas, rng: np.random.Generator, root: np.ndarray, toward: np.ndarray,
                 lung: np.ndarray, lung_len: float) -> np.ndarray:
    """Paint a branching vessel tree (tubes 30-60 HU, thinning peripherally) clipped to ``lung``."""
    vessels = np.zeros(c.shape, dtype=bool)
    stack = [(root, toward / np.linalg.norm(toward), 0.35 * lung_len, 3.5, 0)]
    while stack:
        p0, d, length, radius, depth = stack.pop()
        p1 = p0 + d * length
        sl, inside = c.capsule(p0, p1, radius)
        m = np.broadcast_to(inside, c.hu[sl].shape) & lung[sl]
        c.hu[sl][m] = int(rng.integers(30, 61))
        vessels[sl] |= m
        if depth < 5 and radius > 0.7:
            for _ in range(2):
                # Children turn by 25-45 degrees in a random plane.
                perp = np.cross(d, rng.standard_normal(3))
                perp /= np.linalg.norm(perp) + 1e-9
                angle = np.deg2rad(rng.uniform(25, 45))
                child = np.cos(angle) * d + np.sin(angle) * perp
                stack.append((p1, child, length * 0.72, radius * 0.7, depth + 1))
    return vessels


def _point_in_lung(rng: np.random.Generator, center: np.ndarray, radii: np.ndarray, *, r_max: float,
                   y_sign: float | None = None, z_sign: float | None = None) -> np.ndarray:
    """A random point inside the ellipsoid at normalised radius <= ``r_max`` (optionally a half)."""
    while True:
        u = rng.uniform(-1, 1, 3)
        if np.linalg.norm(u) > 1:
            continue
        if y_sign is not None:
            u[1] = abs(u[1]) * y_sign
        if z_sign is not None:
            u[0] = abs(u[0]) * z_sign
        return center + u * r_max * radii


#: ``(shape, spacing)`` of one phantom anatomy at the default, thin (1 mm) and thick (5 mm)
#: slice spacing: the grids tests run every stage on.
SLICE_GRIDS: dict[str, tuple[tuple[int, int, int], tuple[float, float, float]]] = {
    "2.5mm": ((80, 128, 128), (2.5, 1.5, 1.5)),
    "1mm": ((200, 128, 128), (1.0, 1.5, 1.5)),
    "5mm": ((40, 128, 128), (5.0, 1.5, 1.5)),
}


def make_chest_phantom(
    shape: Sequence[int] = (80, 128, 128),
    spacing: Sequence[float] = (2.5, 1.5, 1.5),
    *,
    seed: int = 0,
    lesions: Sequence[str] = LESION_KINDS,
    noise_hu: float = 20.0,
    air_bronchograms: bool = True,
) -> Phantom:
    """Build a chest CT phantom with lungs, airways, vessels and pneumonia-like lesions.

    The anatomy is laid out as fractions of the field of view (``shape * spacing``) except the
    trachea (18 mm) and vessel calibres (7 mm at the hilum down to < 1.5 mm), which are in mm.

    Parameters
    ----------
    shape
        ``(Z, Y, X)`` voxels.
    spacing
        ``(z, y, x)`` voxel size in mm.
    seed
        Seed of every random choice (lesion placement, vessel branching, textures, noise).
    lesions
        Any of ``"ggo"`` (two ground-glass blobs, one per lung, -650..-300 HU),
        ``"consolidation"`` (a blob in the lower right lung, -100..+50 HU, with air bronchograms)
        and ``"pleural"`` (a dense lesion on the posterolateral chest wall of the left lung, the
        classic failure of threshold lung masks).
    noise_hu
        Standard deviation of the white Gaussian noise in HU.
    air_bronchograms
        Draw air-filled bronchi through the consolidation (labelled consolidation).

    Returns
    -------
    Phantom
    """
    unknown = set(lesions) - set(LESION_KINDS)
    if unknown:
        raise ValueError(f"unknown lesion kinds {sorted(unknown)}; choose from {LESION_KINDS}")
    rng = np.random.default_rng(seed)
    c = _Canvas(shape, spacing, AIR_HU)
    _body_and_wall(c)
    g = _lung_geometry(c)

    # Heart and great vessels in the mediastinum; the left lung wraps around the heart.
    sl, heart = c.ellipsoid(g["heart"], g["heart_r"])
    c.paint(sl, heart, BLOOD_HU)
    heart_gap = c.full(*c.ellipsoid(g["heart"], g["heart_r"] + 2.0))

    lung_labels = np.zeros(c.shape, dtype=np.uint8)
    for side, label in (("right", RIGHT_LUNG), ("left", LEFT_LUNG)):
        sl, inside = c.ellipsoid(g[side], g["lung_r"])
        region = lung_labels[sl]
        region[np.broadcast_to(inside, region.shape) & ~heart_gap[sl]] = label
    lung = lung_labels > 0
    # Parenchyma with a gravity gradient: dependent (posterior) lung is denser.
    y = c.axes[1]
    y0, y1 = g["right"][1] - g["lung_r"][1], g["right"][1] + g["lung_r"][1]
    frac = np.clip((y - y0) / (y1 - y0), 0, 1)
    row_hu = np.rint(LUNG_HU_ANTERIOR + (LUNG_HU_POSTERIOR - LUNG_HU_ANTERIOR) * frac).astype(np.int16)
    c.hu[lung] = np.broadcast_to(row_hu[None, :, None], c.shape)[lung]

    vessels = np.zeros(c.shape, dtype=bool)
    for side in ("right", "left"):
        hilum = g[f"{side}_hilum"]
        for target_z in (0.7, -0.7):
            toward = g[side] + np.array([target_z * g["lung_r"][0], 0.0, 0.0]) - hilum
            vessels |= _vessel_tree(c, rng, hilum, toward, lung, float(2 * g["lung_r"][0]))
        toward = g[side] + np.array([0.0, 0.0, np.sign(g[side][2] - hilum[2]) * g["lung_r"][2]]) - hilum
        vessels |= _vessel_tree(c, rng, hilum, toward, lung, float(2 * g["lung_r"][2]))

    # Airways: trachea from the top of the volume to the carina, two main bronchi to the hila.
    airways = np.zeros(c.shape, dtype=bool)
    r_trachea = TRACHEA_DIAMETER_MM / 2
    for p0, p1, r in (
        (g["trachea_top"], g["carina"], r_trachea),
        (g["carina"], g["right_hilum"], 0.8 * r_trachea),
        (g["carina"], g["left_hilum"], 0.7 * r_trachea),
    ):
        sl, wall = c.capsule(p0, p1, r + 2.0)
        c.paint(sl, wall, SOFT_HU, where=~lung)
        sl, lumen = c.capsule(p0, p1, r)
        airways[sl] |= np.broadcast_to(lumen, airways[sl].shape)
    c.hu[airways] = AIR_HU
    lung_labels[airways] = 0
    lung &= ~airways
    vessels &= lung

    lesion_labels = np.zeros(c.shape, dtype=np.uint8)
    scale = c.extent[2] / 192.0

    def add_lesion(center, radii, label, lo, hi):
        # Lobulated outline: the ellipsoid plus two smaller offset lobes, cut to the lung.
        parts = [(center, radii)]
        for _ in range(2):
            parts.append((center + rng.uniform(-0.6, 0.6, 3) * radii, radii * rng.uniform(0.5, 0.7)))
        lo_mm = np.min([p - r for p, r in parts], axis=0)
        hi_mm = np.max([p + r for p, r in parts], axis=0)
        sl, coords = c.box(lo_mm, hi_mm)
        m = np.zeros(lung[sl].shape, dtype=bool)
        for p, r in parts:
            m |= _in_ellipsoid(coords, p, r)
        m &= lung[sl]
        tex = _texture(rng, m.shape, c.spacing, lo, hi)
        c.hu[sl][m] = np.rint(tex[m]).astype(np.int16)
        lesion_labels[sl][m] = label
        full = np.zeros(c.shape, dtype=bool)
        full[sl] = m
        return full

    lr = g["lung_r"]
    if "ggo" in lesions:
        for side in ("right", "left"):
            centre = _point_in_lung(rng, g[side], lr, r_max=0.45, z_sign=1.0)
            add_lesion(centre, np.array([14.0, 12.0, 12.0]) * scale, GGO, -650, -300)
    if "consolidation" in lesions:
        centre = _point_in_lung(rng, g["right"], lr, r_max=0.4, z_sign=-1.0, y_sign=1.0)
        blob = add_lesion(centre, np.array([14.0, 11.0, 11.0]) * scale, CONSOLIDATION, -100, 50)
        if air_bronchograms and blob.any():
            # Two air-filled bronchi crossing the consolidation, thinner than the blob.
            for off in (-0.3, 0.3):
                p0 = centre + np.array([-10.0, off * 10, -8.0]) * scale
                p1 = centre + np.array([10.0, off * 10, 8.0]) * scale
                sl, tube = c.capsule(p0, p1, 1.2)
                c.paint(sl, tube, -900, where=blob)
    if "pleural" in lesions:
        # Centred on the posterolateral pleura of the left lung, lower half: half of it lies in
        # the lung, flat against the chest wall.
        lc = g["left"]
        angle = np.deg2rad(rng.uniform(30, 50))  # from lateral towards posterior
        centre = lc + np.array([-0.3 * lr[0], lr[1] * np.sin(angle), lr[2] * np.cos(angle)])
        # Put the centre on the ellipsoid surface at that height.
        u = (centre - lc) / lr
        u[1:] *= np.sqrt(max(1 - u[0] ** 2, 1e-6)) / np.linalg.norm(u[1:])
        centre = lc + u * lr
        add_lesion(centre, np.array([28.0, 16.0, 16.0]) * scale, CONSOLIDATION, -60, 50)

    vessels &= lesion_labels == 0  # lesions are painted over the vessels they contain
    volume = c.finish(rng, noise_hu)
    return Phantom(volume, c.spacing, lung_labels, lesion_labels, airways, vessels)


def make_benchmark_phantom(n_slices: int = 300, *, seed: int = 0, slice_mm: float = 1.0) -> Phantom:
    """A full-size chest phantom: 512x512 pixels of 0.7 mm, ``n_slices`` slices of ``slice_mm``.

    The input of the benchmarks (about 4-5 s and 0.6 GB for 300 slices on one core).
    """
    return make_chest_phantom((n_slices, 512, 512), (slice_mm, 0.7, 0.7), seed=seed)


def _empty_truth(c: _Canvas, volume: np.ndarray) -> Phantom:
    z = np.zeros(c.shape, dtype=np.uint8)
    return Phantom(volume, c.spacing, z, z.copy(), np.zeros(c.shape, bool), np.zeros(c.shape, bool))


def make_head_phantom(
    shape: Sequence[int] = (64, 128, 128),
    spacing: Sequence[float] = (3.0, 1.5, 1.5),
    *,
    seed: int = 0,
    noise_hu: float = 20.0,
) -> Phantom:
    """A head CT phantom (skull, brain, ventricles, small air-filled sinuses): no lungs.

    Used to check that lung segmentation refuses non-chest series. Same conventions as
    :func:`make_chest_phantom`; the masks are empty.
    """
    rng = np.random.default_rng(seed)
    c = _Canvas(shape, spacing, AIR_HU)
    e = c.extent
    centre = e * 0.5
    radii = np.array([0.42 * e[0], 0.42 * e[1], 0.36 * e[2]])
    c.paint(*c.ellipsoid(centre, radii), CORTEX_HU)
    c.paint(*c.ellipsoid(centre, radii - 6.0), 35)
    for dx in (-0.06, 0.06):  # lateral ventricles
        c.paint(*c.ellipsoid(centre + np.array([0.05 * e[0], 0, dx * e[2]]), e * [0.08, 0.12, 0.03]), 5)
    for dx in (-0.12, 0.12):  # maxillary sinuses, anterior-inferior
        c.paint(*c.ellipsoid(centre + np.array([-0.2 * e[0], -0.2 * e[1], dx * e[2]]), [12.0, 12.0, 10.0]), AIR_HU)
    return _empty_truth(c, c.finish(rng, noise_hu))


def make_abdomen_phantom(
    shape: Sequence[int] = (64, 128, 128),
    spacing: Sequence[float] = (3.0, 1.5, 1.5),
    *,
    seed: int = 0,
    noise_hu: float = 20.0,
) -> Phantom:
    """An abdomen CT phantom (body wall, liver, kidneys, spine, bowel gas): no lungs.

    The bowel gas (a few pockets, tens of mL in all) is air inside the body, as in real
    abdominal CT, so a lung finder must not mistake it for lung.
    """
    rng = np.random.default_rng(seed)
    c = _Canvas(shape, spacing, AIR_HU)
    _body, (cy, cx), (ry, rx) = _body_and_wall(c)
    e = c.extent
    c.paint(*c.ellipsoid([0.6 * e[0], cy - 0.05 * e[1], cx - 0.18 * e[2]], e * [0.35, 0.18, 0.18]), 60)
    for dx in (-0.16, 0.16):
        c.paint(*c.ellipsoid([0.4 * e[0], cy + 0.12 * e[1], cx + dx * e[2]], e * [0.12, 0.06, 0.04]), 30)
    for _ in range(6):
        p = np.array([rng.uniform(0.1, 0.9) * e[0], cy + rng.uniform(-0.2, 0.05) * ry * 2,
                      cx + rng.uniform(-0.1, 0.25) * rx * 2])
        c.paint(*c.ellipsoid(p, rng.uniform(6.0, 14.0, 3)), AIR_HU)
    return _empty_truth(c, c.finish(rng, noise_hu))
