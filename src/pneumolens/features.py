"""What a radiologist weighs when reading pneumonia on CT, measured on the lesion maps.

Every feature here is a plain function of arrays on the canonical ``[z, y, x]`` grid (HU volume,
lung labels 1 right / 2 left, lesion labels 1 ground glass / 2 consolidation) plus the voxel
``spacing`` in mm; options are keyword-only and in physical units. :func:`compute_features`
gathers them into one frozen :class:`Features`, whose ``distribution`` block is the
``distribution`` of ``analysis.json`` and whose :meth:`Features.vector` is the numeric input of
the scorer (:mod:`pneumolens.assessment`) and of cohort classifiers.

The vocabulary follows the Fleischner Society glossary (Hansell et al., Radiology 2008,
doi 10.1148/radiol.2462070712) and the RSNA expert consensus on COVID-19 CT reporting
(Simpson et al., Radiol Cardiothorac Imaging 2020, doi 10.1148/ryct.2020200152). Each definition,
with its thresholds, is in ``docs/methods.md`` ("Features").

Ratios over an empty set are NaN, never 0 (no lesion is not "0 % peripheral").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import cc3d
import numpy as np
from scipy import ndimage

from pneumolens.grid import (
    bbox,
    block_expand,
    block_mean,
    check_volume,
    component_sizes,
    fill_slices,
    reduction_factors,
)
from pneumolens.masks import CONSOLIDATION, GGO, LEFT_LUNG, RIGHT_LUNG

#: Lesion within this distance of the lung surface counts as subpleural / peripheral (the
#: Fleischner glossary's "subpleural": within 1 cm of the pleura).
PERIPHERAL_MM = 10.0
#: Peripheral predominance: lesion share under the pleura / lung share under the pleura.
PERIPHERAL_PREDOMINANCE = 1.2
#: Pleural contact: a focus of at least 1 mL with a voxel this close to the costal pleura ...
PLEURAL_CONTACT_MM = 5.0
#: ... and peripheral predominance when such foci hold this share of the lesion volume.
PLEURAL_CONTACT_PREDOMINANCE = 0.8
#: A lung counts as involved (for bilaterality) when it holds at least this much lesion ...
BILATERAL_MIN_ML = 1.0
#: ... and at least this share of all lesion (a few mL of noise on the other side is not bilateral).
BILATERAL_MIN_SHARE = 0.05
#: Lesion components smaller than this are not counted (segmentation specks).
MIN_COMPONENT_ML = 0.05
#: Pan et al. 2020 lobe score: involvement upper limits (%) for scores 1..4; > last is 5.
SEVERITY_EDGES_PERCENT = (0.0, 5.0, 25.0, 50.0, 75.0)


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Burden:
    """How much lung is involved. Volumes in mL, percentages of the lung (or region) volume."""

    lesion_ml: float
    lesion_percent: float
    ggo_ml: float
    consolidation_ml: float
    right_percent: float
    left_percent: float
    #: GGO / lesion volume and consolidation / lesion volume (NaN without lesion).
    ggo_share: float
    consolidation_share: float
    #: per region (lobes, else zones): {name: {"lesion_ml", "lesion_percent", "score"}}
    regions: dict[str, dict[str, float]] = field(default_factory=dict)
    region_kind: str = "zones"
    #: highest 0-5 region score (Pan et al. 2020 scale) over the regions.
    worst_region: str | None = None
    worst_region_score: int = 0


@dataclass(frozen=True)
class Distribution:
    """Where the lesions are (the ``distribution`` block of ``analysis.json``)."""

    components: int
    components_over_1ml: int
    largest_component_ml: float
    median_component_ml: float
    peripheral_share: float
    lung_peripheral_share: float
    pleural_contact_share: float
    peripheral_predominant: bool
    outer_third_share: float
    bilateral: bool
    lower_zone_share: float
    upper_zone_share: float
    lower_zone_predominant: bool
    posterior_share: float
    posterior_predominant: bool


@dataclass(frozen=True)
class Pattern:
    """What the lesions look like."""

    crazy_paving_fraction: float
    crazy_paving: bool
    largest_consolidation_ml: float
    lobar_fraction: float
    lobar: bool
    nodule_count: int
    nodular: bool
    air_bronchogram_ml: float
    air_bronchograms: bool


@dataclass(frozen=True)
class Effusion:
    """Pleural effusion: fluid-density collection in the dependent pleural space."""

    detected: bool
    volume_ml: float
    right_ml: float
    left_ml: float
    max_depth_mm: float
    mean_hu: float
    #: bool mask on the scan grid (not written to JSON); ``None`` when nothing was found.
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Features:
    burden: Burden
    distribution: Distribution
    pattern: Pattern
    effusion: Effusion

    def to_dict(self) -> dict:
        """JSON-ready nested dict (no arrays)."""
        effusion = {k: v for k, v in asdict(self.effusion).items() if k != "mask"}
        return {
            "burden": asdict(self.burden),
            "distribution": asdict(self.distribution),
            "pattern": asdict(self.pattern),
            "effusion": effusion,
        }

    def vector(self) -> dict[str, float]:
        """The numeric features (:data:`FEATURE_NAMES`, booleans as 0/1, NaN -> 0 for shares)."""
        b, d, p, e = self.burden, self.distribution, self.pattern, self.effusion
        values = {
            "lesion_percent": b.lesion_percent,
            "lesion_ml": b.lesion_ml,
            "ggo_share": b.ggo_share,
            "consolidation_share": b.consolidation_share,
            "worst_region_score": b.worst_region_score,
            "components": d.components,
            "largest_component_ml": d.largest_component_ml,
            "peripheral_share": d.peripheral_share,
            "peripheral_ratio": _ratio(d.peripheral_share, d.lung_peripheral_share),
            "outer_third_share": d.outer_third_share,
            "bilateral": d.bilateral,
            "lower_zone_share": d.lower_zone_share,
            "posterior_share": d.posterior_share,
            "crazy_paving_fraction": p.crazy_paving_fraction,
            "lobar_fraction": p.lobar_fraction,
            "nodule_count": p.nodule_count,
            "air_bronchogram_ml": p.air_bronchogram_ml,
            "effusion_ml": e.volume_ml,
        }
        return {k: (0.0 if isinstance(v, float) and math.isnan(v) else float(v)) for k, v in values.items()}


#: Names of :meth:`Features.vector`, in order: the columns a cohort classifier is trained on.
FEATURE_NAMES: tuple[str, ...] = (
    "lesion_percent",
    "lesion_ml",
    "ggo_share",
    "consolidation_share",
    "worst_region_score",
    "components",
    "largest_component_ml",
    "peripheral_share",
    "peripheral_ratio",
    "outer_third_share",
    "bilateral",
    "lower_zone_share",
    "posterior_share",
    "crazy_paving_fraction",
    "lobar_fraction",
    "nodule_count",
    "air_bronchogram_ml",
    "effusion_ml",
)


# ----------------------------------------------------------------------------- helpers
def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def severity_score(percent: float) -> int:
    """0-5 involvement score of one lobe (Pan et al., Radiology 2020, doi 10.1148/radiol.2020200370).

    0 none, 1 < 5 %, 2 5-25 %, 3 26-50 %, 4 51-75 %, 5 > 75 % of the lobe (here: of the region).
    """
    if not math.isfinite(percent) or percent <= 0:
        return 0
    return 1 + sum(percent > edge for edge in SEVERITY_EDGES_PERCENT[1:])


def _slice_thirds(lungs: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per lung: (third of each slice 1 lower / 2 middle / 3 upper, lung voxels per slice).

    A slice belongs to the third in which the cumulative lung volume from the bottom (z index 0
    is most inferior) reaches its middle: the thirds hold about a third of the lung each.
    """
    out = {}
    for side in (RIGHT_LUNG, LEFT_LUNG):
        per_slice = np.count_nonzero(lungs == side, axis=(1, 2))
        total = per_slice.sum()
        if total == 0:
            out[side] = (np.zeros(per_slice.shape, np.int8), per_slice)
            continue
        mid = (np.cumsum(per_slice) - per_slice / 2.0) / total
        out[side] = (np.where(mid < 1 / 3, 1, np.where(mid < 2 / 3, 2, 3)).astype(np.int8), per_slice)
    return out


def lung_thirds(lungs: np.ndarray) -> np.ndarray:
    """Each lung cut into lower / middle / upper thirds by volume along z: int8 ``[z, y, x]``.

    Values 0 outside the lungs, 1 lower, 2 middle, 3 upper, per lung (whole slices: the slice
    where the cumulative volume passes 1/3 or 2/3 goes to the third holding its middle). This is
    the zone definition of lower-zone predominance, used whatever regions the analysis has.
    """
    out = np.zeros(lungs.shape, dtype=np.int8)
    for side, (third, _) in _slice_thirds(lungs).items():
        mask = lungs == side
        out[mask] = np.broadcast_to(third[:, None, None], mask.shape)[mask]
    return out


ZONE_NAMES = {1: "right_upper", 2: "right_middle", 3: "right_lower", 4: "left_upper", 5: "left_middle", 6: "left_lower"}


def lung_zone_regions(lungs: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Six lung zones (upper/middle/lower third of each lung by volume) as a region label map."""
    thirds = lung_thirds(lungs)
    zone = np.where(thirds > 0, 4 - thirds + 3 * (lungs == LEFT_LUNG), 0).astype(np.uint8)
    return zone, dict(ZONE_NAMES)


#: Working grid (mm) of the distance to the pleura.
DEPTH_GRID_MM = (4.0, 3.0, 3.0)


def lesion_depths(
    lungs: np.ndarray,
    spacing: Sequence[float],
    coords: np.ndarray,
    *,
    grid_mm: Sequence[float] = DEPTH_GRID_MM,
    peripheral_mm: float = PERIPHERAL_MM,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Depth below the pleura of the lung voxels at ``coords`` (``(N, 3)`` indices).

    Returns ``(depth_mm, relative, lung_share)``: the distance to the lung surface in mm; that
    distance as a fraction of the deepest point of the same lung on the same slice (0 on the
    pleura, 1 at the core of the lung section; the radiologists' "outer third" is about
    <= 1/3); and the share of the lung volume itself within ``peripheral_mm`` of its surface
    (what an evenly spread lesion would give as its peripheral share).
    The surface is the costal, apical and diaphragmatic pleura: the mediastinum between the
    lungs (:func:`_between_lungs`) is filled before a 3D Euclidean distance transform on a
    grid strided to about
    ``grid_mm``, read at the nearest coarse voxel: about 2 mm error, a small fraction of the
    full-grid time.
    """
    sp = check_volume(lungs, spacing)
    factors = np.asarray(reduction_factors(sp, grid_mm))
    work_sp = tuple(s * f for s, f in zip(sp, factors))
    depth = np.zeros(coords.shape[0], np.float32)
    rel = np.zeros(coords.shape[0], np.float32)
    small = lungs[:: factors[0], :: factors[1], :: factors[2]]
    n_lung, n_outer = 0, 0
    idx = coords // factors
    box = bbox(small > 0)
    if box is None:
        return depth, rel, float("nan")
    sub = small[box]
    right, left = sub == RIGHT_LUNG, sub == LEFT_LUNG
    # The mediastinum between the lungs is filled in, so that only the costal (and apical,
    # diaphragmatic) pleura counts as the surface: "peripheral" in the radiologists' sense.
    thorax = right | left | _between_lungs(right, left, np.zeros(sub.shape, bool))
    # Padding makes the box edge count as surface (the lung ends there).
    edt = ndimage.distance_transform_edt(np.pad(thorax, 1), sampling=work_sp)[1:-1, 1:-1, 1:-1]
    inside = right | left
    n_lung = int(np.count_nonzero(inside))
    n_outer = int(np.count_nonzero(inside & (edt <= peripheral_mm)))
    if coords.size:
        local = np.clip(idx - np.array([b.start for b in box]), 0, np.array(edt.shape) - 1)
        peak = np.where(inside, edt, 0).max(axis=(1, 2))
        depth[:] = edt[tuple(local.T)]
        rel[:] = depth / np.maximum(peak[local[:, 0]], 1e-6)
    return depth, rel, _ratio(n_outer, n_lung)


# ----------------------------------------------------------------------------- burden
def burden_features(
    lungs: np.ndarray,
    lesion_labels: np.ndarray,
    spacing: Sequence[float],
    *,
    regions: np.ndarray | None = None,
    region_names: Mapping[int, str] | None = None,
    region_kind: str = "zones",
) -> Burden:
    """Lesion volume and share per lung and per region, GGO vs consolidation share.

    ``regions`` (uint8 label map, lobes or zones) with ``region_names``; when ``None`` the six
    lung zones of :func:`lung_zone_regions` are used. Each region gets the 0-5 score of
    :func:`severity_score` on its lesion percentage.
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    in_lung = lungs > 0
    lesion = (lesion_labels > 0) & in_lung
    n_lung = int(np.count_nonzero(in_lung))
    n_ggo = int(np.count_nonzero((lesion_labels == GGO) & in_lung))
    n_lesion = int(np.count_nonzero(lesion))
    n_cons = n_lesion - n_ggo
    coords = np.argwhere(lesion)
    side_at = lungs[tuple(coords.T)]
    if regions is None:
        thirds = _slice_thirds(lungs)
        names = dict(ZONE_NAMES)
        region_kind = "zones"
        counts = np.zeros(7, np.int64)
        for side, (third, per_slice) in thirds.items():
            zone_of_slice = np.where(third > 0, 4 - third + 3 * (side == LEFT_LUNG), 0)
            counts += np.bincount(zone_of_slice, weights=per_slice, minlength=7).astype(np.int64)[:7]
        lesion_zone = np.zeros(coords.shape[0], np.int64)
        for side, (third, _) in thirds.items():
            sel = side_at == side
            lesion_zone[sel] = 4 - third[coords[sel, 0]] + 3 * (side == LEFT_LUNG)
        lesion_counts = np.bincount(lesion_zone, minlength=7)
    else:
        names = dict(region_names or {})
        size = max(names, default=0) + 1
        counts = np.bincount(regions[in_lung].ravel(), minlength=size)
        lesion_counts = np.bincount(regions[tuple(coords.T)].ravel(), minlength=counts.size)
    side_pct = {}
    for side in (RIGHT_LUNG, LEFT_LUNG):
        side_pct[side] = 100.0 * _ratio(np.count_nonzero(side_at == side), np.count_nonzero(lungs == side))
    per_region: dict[str, dict[str, float]] = {}
    worst, worst_score = None, 0
    for value, name in names.items():
        pct = 100.0 * _ratio(lesion_counts[value], counts[value])
        score = severity_score(pct)
        per_region[name] = {"lesion_ml": float(lesion_counts[value]) * voxel_ml, "lesion_percent": pct, "score": score}
        if score > worst_score:
            worst, worst_score = name, score
    return Burden(
        lesion_ml=n_lesion * voxel_ml,
        lesion_percent=100.0 * _ratio(n_lesion, n_lung),
        ggo_ml=n_ggo * voxel_ml,
        consolidation_ml=n_cons * voxel_ml,
        right_percent=side_pct[RIGHT_LUNG],
        left_percent=side_pct[LEFT_LUNG],
        ggo_share=_ratio(n_ggo, n_lesion),
        consolidation_share=_ratio(n_cons, n_lesion),
        regions=per_region,
        region_kind=region_kind,
        worst_region=worst,
        worst_region_score=worst_score,
    )


# ----------------------------------------------------------------------------- distribution
def lesion_components(lesion: np.ndarray, spacing: Sequence[float], *, min_ml: float = MIN_COMPONENT_ML) -> tuple[np.ndarray, np.ndarray]:
    """26-connected lesion components inside the bounding box of ``lesion``.

    Returns ``(labels, sizes_ml)``: the label map of the lesion's bounding box (empty array
    when there is no lesion) and each label's volume in mL (index label-1), with components
    under ``min_ml`` (segmentation specks) set to 0 mL.
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    box = bbox(lesion)
    if box is None:
        return np.zeros((0, 0, 0), dtype=np.uint32), np.zeros(0)
    inside = lesion[box]
    labels, n = cc3d.connected_components(inside, connectivity=26, return_N=True)
    sizes = component_sizes(labels, inside, n)[1:] * voxel_ml
    return labels, np.where(sizes >= min_ml, sizes, 0.0)


def _pleural_contact_share(
    lesion: np.ndarray,
    coords: np.ndarray,
    depth: np.ndarray,
    components: tuple[np.ndarray, np.ndarray],
    spacing: Sequence[float],
) -> float:
    """Share of the lesion volume in foci of >= 1 mL that come within ``PLEURAL_CONTACT_MM``
    of the costal pleura (``coords``/``depth`` from :func:`lesion_depths`)."""
    labels, sizes = components
    box = bbox(lesion)
    if box is None or coords.size == 0:
        return float("nan")
    comp = labels[tuple((coords - np.array([b.start for b in box])).T)]
    nearest = np.full(sizes.size + 1, np.inf)
    np.minimum.at(nearest, comp, depth)
    touching = (nearest[1:] <= PLEURAL_CONTACT_MM) & (sizes >= 1.0)
    return _ratio(float(sizes[touching].sum()), float(np.count_nonzero(lesion)) * float(np.prod(spacing)) / 1000.0)


def distribution_features(
    lungs: np.ndarray,
    lesion_labels: np.ndarray,
    spacing: Sequence[float],
    *,
    peripheral_mm: float = PERIPHERAL_MM,
    components: tuple[np.ndarray, np.ndarray] | None = None,
) -> Distribution:
    """Components, peripheral share, bilaterality, lower-zone and posterior predominance.

    * ``components``: 26-connected lesion components of at least 0.05 mL
      (``components_over_1ml``: of at least 1 mL, the foci a reader would count).
    * ``peripheral_share``: share of lesion volume within ``peripheral_mm`` of the lung surface
      (:func:`lesion_depths`; subpleural).
    * ``pleural_contact_share``: share of lesion volume in foci (>= 1 mL) that abut the costal
      pleura (some voxel within ``PLEURAL_CONTACT_MM``).
    * ``peripheral_predominant``: the peripheral share is at least ``PERIPHERAL_PREDOMINANCE``
      (1.2) times the share of the lung itself within ``peripheral_mm`` of its surface
      (``lung_peripheral_share``: lesions over-represented under the pleura), or at least
      ``PLEURAL_CONTACT_PREDOMINANCE`` (0.8) of the lesion lies in foci abutting the pleura
      (large confluent subpleural lesions reach deep, but start at the pleura).
    * ``outer_third_share``: share of lesion in the outer third of the lung section
      (relative depth of :func:`lesion_depths` <= 1/3; "peripheral" in the radiologists' sense).
    * ``bilateral``: each lung holds >= 1 mL and >= 5 % of the lesion volume.
    * ``lower_zone_share`` / ``upper_zone_share``: share of lesion in the lower / upper third of
      each lung by volume (:func:`lung_thirds`; 1/3 each when lesions are spread evenly);
      lower-zone predominant when the lower share is >= 0.5 and twice the upper share.
    * ``posterior_share``: share of lesion behind the median y (anterior-posterior) of its lung,
      i.e. in the dorsal half of the lung volume; predominant when >= 0.65.
    """
    sp = check_volume(lungs, spacing)
    lesion = (lesion_labels > 0) & (lungs > 0)
    coords = np.argwhere(lesion)
    n_lesion = coords.shape[0]
    if components is None:
        components = lesion_components(lesion, sp)
    sizes = components[1][components[1] > 0]
    depth, rel, lung_share = lesion_depths(lungs, sp, coords, peripheral_mm=peripheral_mm)
    peripheral = _ratio(np.count_nonzero(depth <= peripheral_mm), n_lesion)
    contact = _pleural_contact_share(lesion, coords, depth, components, sp)
    voxel_ml = float(np.prod(sp)) / 1000.0
    side_at = lungs[tuple(coords.T)]
    per_side = [int(np.count_nonzero(side_at == s)) for s in (RIGHT_LUNG, LEFT_LUNG)]
    bilateral = n_lesion > 0 and all(
        n * voxel_ml >= BILATERAL_MIN_ML and n / n_lesion >= BILATERAL_MIN_SHARE for n in per_side
    )
    third_at = np.zeros(n_lesion, np.int8)
    posterior_n = 0
    for side, (third, _) in _slice_thirds(lungs).items():
        sel = side_at == side
        third_at[sel] = third[coords[sel, 0]]
        y_counts = np.count_nonzero(lungs == side, axis=(0, 2))
        if y_counts.sum():
            y_mid = int(np.searchsorted(np.cumsum(y_counts), y_counts.sum() / 2.0))
            posterior_n += int(np.count_nonzero(coords[sel, 1] > y_mid))
    lower = _ratio(np.count_nonzero(third_at == 1), n_lesion)
    upper = _ratio(np.count_nonzero(third_at == 3), n_lesion)
    posterior = _ratio(posterior_n, n_lesion)
    return Distribution(
        components=int(sizes.size),
        components_over_1ml=int(np.count_nonzero(sizes >= 1.0)),
        largest_component_ml=float(sizes.max()) if sizes.size else 0.0,
        median_component_ml=float(np.median(sizes)) if sizes.size else 0.0,
        peripheral_share=peripheral,
        lung_peripheral_share=lung_share,
        pleural_contact_share=contact,
        peripheral_predominant=bool(
            n_lesion and (peripheral >= PERIPHERAL_PREDOMINANCE * lung_share or contact >= PLEURAL_CONTACT_PREDOMINANCE)
        ),
        outer_third_share=_ratio(np.count_nonzero(rel <= 1.0 / 3.0), n_lesion),
        bilateral=bool(bilateral),
        lower_zone_share=lower,
        upper_zone_share=upper,
        lower_zone_predominant=bool(n_lesion and lower >= 0.5 and lower >= 2 * upper),
        posterior_share=posterior,
        posterior_predominant=bool(n_lesion and posterior >= 0.65),
    )


# ----------------------------------------------------------------------------- pattern
#: Crazy paving: thin bright lines over ground glass; top-hat threshold, line width and the
#: share of GGO voxels on such lines above which the pattern is called.
CRAZY_PAVING_TOPHAT_HU = 60.0
CRAZY_PAVING_LINE_MM = 3.0
CRAZY_PAVING_MIN_FRACTION = 0.3
CRAZY_PAVING_MIN_GGO_ML = 20.0
CRAZY_PAVING_SLICES = 24
#: Lobar consolidation: the largest consolidation component holds this much ...
LOBAR_MIN_ML = 30.0
#: ... fills at least this share of the lung third it lies in ...
LOBAR_MIN_FRACTION = 0.15
#: ... and is at least this share of all consolidation and of all lesion.
LOBAR_MIN_SHARE = 0.6
#: Nodules: round components of 3-15 mm equivalent diameter.
NODULE_DIAMETER_MM = (3.0, 15.0)
NODULE_MAX_ELONGATION = 2.5
NODULE_MIN_PEAK_HU = -150.0
NODULAR_MIN_COUNT = 5
#: Lesion components this close (mm) to a pleural effusion are compressed lung, not nodules.
NODULE_EFFUSION_MARGIN_MM = 5.0
NODULAR_MIN_SHARE = 0.4
#: ... or no focus larger than this (mL): scattered nodules without confluent disease.
NODULAR_MAX_FOCUS_ML = 5.0
#: Air bronchograms: air (below this HU) enclosed by consolidation in its slice.
AIR_HU = -500.0
AIR_BRONCHOGRAM_MIN_ML = 0.1


def crazy_paving_fraction(volume: np.ndarray, lesion_labels: np.ndarray, spacing: Sequence[float]) -> float:
    """Share of ground-glass voxels lying on thin bright lines (intralobular/septal reticulation).

    Per axial slice, white top-hat of the HU image with a square of ``CRAZY_PAVING_LINE_MM``
    side: lines thinner than that stand out; a GGO voxel is "on a line" when its top-hat is
    >= ``CRAZY_PAVING_TOPHAT_HU`` and its HU stays below -100 (vessel cores, denser, excluded).
    Crazy paving = reticulation superimposed on ground glass (Hansell et al. 2008).
    """
    ggo = lesion_labels == GGO
    n = int(np.count_nonzero(ggo))
    if n == 0:
        return float("nan")
    box = bbox(ggo, margin=(0, 4, 4))
    # At most CRAZY_PAVING_SLICES slices, evenly spread over those with GGO: the share is a
    # sample statistic, and the top-hat is the costly step.
    ks = np.flatnonzero(ggo[box].any(axis=(1, 2)))
    ks = ks[np.unique(np.linspace(0, ks.size - 1, min(ks.size, CRAZY_PAVING_SLICES)).round().astype(int))]
    sub_v = volume[box][ks].astype(np.float32)
    sub_g = ggo[box][ks]
    n = int(np.count_nonzero(sub_g))
    w = 2 * max(1, round(CRAZY_PAVING_LINE_MM / 2.0 / float(spacing[1]))) + 1
    # White top-hat per slice with a square of about the line width (separable min/max filters).
    tophat = sub_v - ndimage.maximum_filter(ndimage.minimum_filter(sub_v, size=(1, w, w)), size=(1, w, w))
    hits = int(np.count_nonzero(sub_g & (tophat >= CRAZY_PAVING_TOPHAT_HU) & (sub_v < -100.0)))
    return hits / n


def _elongation(coords_mm: np.ndarray, spacing: np.ndarray) -> float:
    """sqrt of the largest / smallest eigenvalue of the covariance of a component's voxels
    (1 for a ball). Each voxel counts as a box: its own variance ``spacing**2 / 12`` is added,
    so a nodule seen on one or two thick slices is not taken for a flat plate."""
    if coords_mm.shape[0] < 2:
        return 1.0
    ev = np.linalg.eigvalsh(np.cov(coords_mm.T) + np.diag(spacing**2 / 12.0))
    return float(np.sqrt(ev[-1] / ev[0]))


def nodule_count(
    comp_labels: np.ndarray,
    sizes_ml: np.ndarray,
    spacing: Sequence[float],
    hu: np.ndarray | None = None,
    *,
    exclude: np.ndarray | None = None,
) -> tuple[int, float]:
    """Number of nodule-like components and their share of the lesion volume.

    A nodule is a component whose equivalent-sphere diameter is within ``NODULE_DIAMETER_MM``,
    whose elongation (:func:`_elongation`, in mm with the slice spacing) is at most
    ``NODULE_MAX_ELONGATION`` (small and round, not a patch or a band) and, given ``hu`` (the
    HU of the components' bounding box), whose densest voxel reaches ``NODULE_MIN_PEAK_HU``
    (a solid core: faint ground-glass specks are not the "discrete nodules" of the RSNA list).
    Components touching ``exclude`` (same grid as ``comp_labels``: the surroundings of a
    pleural effusion) are not counted: lung compressed by the fluid (passive atelectasis,
    Fleischner glossary, Hansell et al. 2008) gives small dense blobs along its surface.
    """
    if sizes_ml.size == 0:
        return 0, float("nan")
    diam = (6.0 * sizes_ml * 1000.0 / math.pi) ** (1.0 / 3.0)
    lo, hi = NODULE_DIAMETER_MM
    candidates = np.flatnonzero((diam >= lo) & (diam <= hi)) + 1
    if candidates.size == 0:
        return 0, 0.0
    objects = ndimage.find_objects(comp_labels)
    sp = np.asarray(spacing, dtype=float)
    count, volume = 0, 0.0
    for label in candidates:
        sl = objects[label - 1]
        inside = comp_labels[sl] == label
        if hu is not None and float(hu[sl][inside].max()) < NODULE_MIN_PEAK_HU:
            continue
        if exclude is not None and bool(exclude[sl][inside].any()):
            continue
        coords = np.argwhere(inside) * sp
        if _elongation(coords, sp) <= NODULE_MAX_ELONGATION:
            count += 1
            volume += float(sizes_ml[label - 1])
    return count, _ratio(volume, float(sizes_ml.sum()))


def lobar_consolidation(
    lungs: np.ndarray, lesion_labels: np.ndarray, spacing: Sequence[float]
) -> tuple[float, float]:
    """Largest consolidation component (mL) and the share of its lung third it fills.

    The third (:func:`lung_thirds`) is the one holding most of the component; a lobe or segment
    filled by one confluent consolidation gives a large share, patchy disease a small one.
    """
    cons = (lesion_labels == CONSOLIDATION) & (lungs > 0)
    box = bbox(cons)
    if box is None:
        return 0.0, 0.0
    voxel_ml = float(np.prod(spacing)) / 1000.0
    coords = np.argwhere(cc3d.largest_k(cons[box], k=1, connectivity=26) > 0) + np.array([b.start for b in box])
    side_at = lungs[tuple(coords.T)]
    thirds = _slice_thirds(lungs)
    zone_at = np.zeros(coords.shape[0], np.int64)
    zone_size = np.zeros(7)
    for side, (third, per_slice) in thirds.items():
        sel = side_at == side
        offset = 3 * (side == LEFT_LUNG)
        zone_at[sel] = third[coords[sel, 0]] + offset
        zone_size[1 + offset : 4 + offset] = [per_slice[third == t].sum() for t in (1, 2, 3)]
    in_zone = np.bincount(zone_at, minlength=7)
    main = int(np.argmax(in_zone[1:]) + 1)
    return float(coords.shape[0]) * voxel_ml, _ratio(in_zone[main], zone_size[main])


def air_bronchogram_ml(volume: np.ndarray, lesion_labels: np.ndarray, spacing: Sequence[float]) -> float:
    """Volume (mL) of air enclosed by consolidation in its axial slice (air bronchograms).

    Air = HU below ``AIR_HU``; enclosed = inside the slice-wise hole-filled consolidation
    (labelled consolidation itself or holes in it). Feasible only where the bronchi run in-plane
    or are cut across: a marker, not a count of bronchi.
    """
    cons = lesion_labels == CONSOLIDATION
    if not cons.any():
        return 0.0
    box = bbox(cons)
    sub_c, sub_v = cons[box], volume[box]
    filled = fill_slices(sub_c)
    inner = ndimage.binary_erosion(filled, structure=np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool))
    n = int(np.count_nonzero(inner & (sub_v < AIR_HU)))  # the rim is partial volume with the lung
    return n * float(np.prod(spacing)) / 1000.0


def pattern_features(
    volume: np.ndarray,
    lungs: np.ndarray,
    lesion_labels: np.ndarray,
    spacing: Sequence[float],
    *,
    components: tuple[np.ndarray, np.ndarray] | None = None,
    effusion: np.ndarray | None = None,
) -> Pattern:
    """Crazy paving, lobar vs patchy consolidation, nodular pattern, air bronchograms.

    ``effusion``: a pleural effusion mask on the same grid; lesion components within
    ``NODULE_EFFUSION_MARGIN_MM`` of it are compressed lung, not nodules (:func:`nodule_count`).
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    lesion = (lesion_labels > 0) & (lungs > 0)
    comp_labels, sizes = components if components is not None else lesion_components(lesion, spacing)
    n_ggo = int(np.count_nonzero(lesion_labels == GGO))
    n_cons = int(np.count_nonzero(lesion_labels == CONSOLIDATION))
    n_lesion = max(n_ggo + n_cons, 1)
    paving = crazy_paving_fraction(volume, lesion_labels, spacing)
    largest_ml, fill = lobar_consolidation(lungs, lesion_labels, spacing)
    lobar = (
        largest_ml >= LOBAR_MIN_ML
        and fill >= LOBAR_MIN_FRACTION
        and largest_ml >= LOBAR_MIN_SHARE * n_cons * voxel_ml
        and largest_ml >= LOBAR_MIN_SHARE * n_lesion * voxel_ml
    )
    box = bbox(lesion)
    near = None
    if box is not None and effusion is not None and effusion.any():
        reach = [2 * math.ceil(NODULE_EFFUSION_MARGIN_MM / s) + 1 for s in spacing]
        near = ndimage.maximum_filter(effusion, size=reach)[box]
    count, share = nodule_count(comp_labels, sizes, spacing, None if box is None else volume[box], exclude=near)
    air_ml = air_bronchogram_ml(volume, lesion_labels, spacing)
    return Pattern(
        crazy_paving_fraction=paving,
        crazy_paving=bool(
            n_ggo * voxel_ml >= CRAZY_PAVING_MIN_GGO_ML and math.isfinite(paving) and paving >= CRAZY_PAVING_MIN_FRACTION
        ),
        largest_consolidation_ml=largest_ml,
        lobar_fraction=fill,
        lobar=bool(lobar),
        nodule_count=count,
        nodular=bool(
            count >= NODULAR_MIN_COUNT
            and ((math.isfinite(share) and share >= NODULAR_MIN_SHARE) or float(sizes.max(initial=0.0)) < NODULAR_MAX_FOCUS_ML)
        ),
        air_bronchogram_ml=air_ml,
        air_bronchograms=bool(air_ml >= AIR_BRONCHOGRAM_MIN_ML and n_cons * voxel_ml >= 10.0),
    )


# ----------------------------------------------------------------------------- effusion
#: Fluid band (HU, after smoothing): transudate and exudate are about 0-30 HU; muscle, blood and
#: unenhanced liver are 40-65 HU.
FLUID_HU = (-20.0, 30.0)
#: Accepted mean HU of a collection.
FLUID_MEAN_HU = (-10.0, 25.0)
#: Thinner than this (mm) is partial volume at tissue interfaces, not a collection.
EFFUSION_MIN_THICKNESS_MM = 4.0
#: The pleural space searched: this far (mm, in-plane) from the lung.
EFFUSION_SEARCH_MM = 60.0
EFFUSION_MIN_ML = 10.0
#: Working grid of the effusion search (mm).
EFFUSION_GRID_MM = (4.0, 2.5, 2.5)
#: How far below (mm) fluid reached from a lung is followed through fluid (the posterior
#: costophrenic recess), and how far behind the lung (through consolidation the lung mask cut
#: off, or fluid) going posteriorly: the deepest free effusions layer 50-60 mm; a longer run
#: crosses a whole fatty liver of fluid density under the dome.
BASE_SEARCH_MM = 50.0
DEPENDENT_SEARCH_MM = 60.0
#: What a search run may cross between lung and fluid outside the lungs: soft tissue,
#: consolidation cut off by the lung mask, and the partial-volume rim of the lung.
PASSABLE_HU = (-700.0, 100.0)
#: Fluid is followed down (the posterior costophrenic recess) only where bone (ribs, spine) lies
#: within this distance (mm) outwards: the recess lies against the chest wall, while a fatty
#: liver of fluid density under the dome lies deeper.
RECESS_RIB_MM = 30.0
#: Intercostal spaces up to this height (mm along z) are closed to make the rib cage a wall.
RIB_GAP_MM = 40.0
#: Pleural fluid has bone (rib or spine) within this distance outwards.
RIB_SEARCH_MM = 40.0
#: Bone (ribs, spine) on the smoothed working grid.
BONE_HU = 180.0
#: Next to the lung, a working block is fluid when half its full-resolution voxels lie in the
#: fluid band widened downwards by this much (HU): a thin layer under the lung is pulled out
#: of the band by the block mean (partial volume with air), not by its own density.
FULL_BAND_WIDEN_HU = (40.0, 0.0)
#: A collection is dependent when its median y lies behind this percentile of the y of the
#: lung it touches (in its slices): free fluid layers behind the lung, an organ under a basal
#: lung crescent (fatty liver, spleen) lies in front of most of it.
DEPENDENT_LUNG_PERCENTILE = 75.0
#: Free fluid is the most dependent content of the pleural space: a fluid-density voxel with air
#: (a working block with at least ``AIR_BLOCK_FRACTION`` of its voxels below ``AIR_HU``, inside the
#: rib cage) within this distance (mm) behind it, with no bone between, is lung: consolidation
#: carrying air bronchograms, or an organ under a basal lung crescent.
AIR_BEHIND_MM = 30.0
AIR_BLOCK_FRACTION = 0.05
#: Widening of the fluid band (HU, down and up) when the border is redrawn at full resolution
#: (after smoothing normalised over the non-air voxels): down for the partial volume of voxels
#: within ``REDRAW_AIR_MM`` (in-plane) of air (the lung side), barely up (chest-wall muscle of
#: 35-60 HU lies against the fluid). Away from air the band is not widened downwards: there a
#: voxel below it is fat or fat-infiltrated chest-wall muscle.
REDRAW_WIDEN_HU = (40.0, 5.0)
REDRAW_AIR_MM = 1.5


def _straight_runs(passable: np.ndarray, runs: Sequence[tuple[np.ndarray, int, int, int]]) -> np.ndarray:
    """Voxels joined to a ``start`` mask by an unbroken straight run of ``passable`` voxels.

    ``runs`` holds ``(start, axis, limit, step)``: runs leave ``start`` along ``axis`` in the
    direction ``step`` (+1 or -1) for at most ``limit`` voxels.
    """
    out = np.zeros(passable.shape, dtype=bool)
    for start, axis, limit, step in runs:
        n = passable.shape[axis]
        order = list(range(n) if step > 0 else range(n - 1, -1, -1))
        run = np.zeros(np.delete(passable.shape, axis), dtype=np.int32)
        for i in order:
            cur = np.take(passable, i, axis=axis)
            carried = np.where(run > 0, run + 1, 0)
            run = np.where(cur & (carried > 0) & (carried <= limit), carried, 0)
            idx = [slice(None)] * 3
            idx[axis] = i
            out[tuple(idx)] |= run > 0
            run = np.where(np.take(start, i, axis=axis), 1, run)
    return out


def _lateral_half(lung: np.ndarray, *, outwards: int) -> np.ndarray:
    """The lung voxels in the lateral half of each slice's lung (``outwards``: -1 when lateral
    is towards smaller x, the right lung; +1 for the left lung)."""
    x = np.arange(lung.shape[2])
    has = lung.any(axis=(1, 2))
    lo = np.where(has, np.where(lung.any(axis=1), x, lung.shape[2]).min(axis=1), 0)
    hi = np.where(has, np.where(lung.any(axis=1), x, -1).max(axis=1), 0)
    mid = 0.5 * (lo + hi)
    side = (x[None, :] <= mid[:, None]) if outwards < 0 else (x[None, :] >= mid[:, None])
    return lung & side[:, None, :]


def _reached_from_lung(
    lung_r: np.ndarray,
    lung_l: np.ndarray,
    passable: np.ndarray,
    fluid: np.ndarray,
    reach: Sequence[int],
    recess: np.ndarray | None = None,
) -> np.ndarray:
    """Fluid joined to a lung by an unbroken straight run, within ``reach`` (z, y, x voxels).

    Runs of ``passable`` voxels go posteriorly (+y: the dependent direction of a supine
    patient) from either lung and laterally outwards (-x from the right lung, +x from the
    left) from the lateral half of the lung (a run from the medial limb of a basal lung
    crescent would cross the liver or spleen). Fluid so reached in the lower half of the lungs
    is followed inferiorly (-z) through ``fluid`` voxels only: the posterior costophrenic
    recess under a lung base fills from the layer above it, while an organ under the diaphragm
    (a fatty liver of fluid density) touches the lung base with no fluid layer above it, and
    the shoulder muscles are not followed down the chest wall. ``recess`` (default ``fluid``)
    limits where fluid is followed down (near the ribs: the recess lies against the chest
    wall). A collection between lung and chest wall is reached; muscle behind the (closed) rib
    cage and the mediastinum beside the lungs are not.
    """
    recess = fluid if recess is None else recess & fluid
    lungs = lung_r | lung_l
    lateral_r, lateral_l = _lateral_half(lung_r, outwards=-1), _lateral_half(lung_l, outwards=1)
    out = _straight_runs(passable, ((lungs, 1, reach[1], 1), (lateral_r, 2, reach[2], -1), (lateral_l, 2, reach[2], 1)))
    out &= fluid
    zs = np.flatnonzero(lungs.any(axis=(1, 2)))
    basal = out.copy()
    if zs.size:
        basal[round(0.5 * (zs[0] + zs[-1])) :] = False
    return out | (_straight_runs(recess, ((basal, 0, reach[0], -1),)) & recess)


def _inside_rib_cage(bone: np.ndarray, lungs: np.ndarray, reach: Sequence[int]) -> np.ndarray:
    """Voxels with bone within ``reach`` (y, x voxels) outwards: posteriorly, or laterally away
    from the midline of the lungs. Pleural fluid lies inside the ribs; chest-wall and paraspinal
    muscle lie outside them, with no bone further out.
    """
    out = np.zeros(bone.shape, dtype=bool)
    c = np.cumsum(bone, axis=1, dtype=np.int32)
    n = bone.shape[1]
    ahead = np.take(c, np.minimum(np.arange(n) + reach[0], n - 1), axis=1) - c
    out |= ahead > 0
    xs = np.flatnonzero(lungs.any(axis=(0, 1)))
    if xs.size == 0:
        return out
    mid = round((xs[0] + xs[-1]) / 2.0)
    c = np.cumsum(bone, axis=2, dtype=np.int32)
    n = bone.shape[2]
    right_ahead = c - np.take(c, np.maximum(np.arange(n) - reach[1], 0), axis=2)  # bone at smaller x
    left_ahead = np.take(c, np.minimum(np.arange(n) + reach[1], n - 1), axis=2) - c
    out[:, :, :mid] |= right_ahead[:, :, :mid] > 0
    out[:, :, mid:] |= left_ahead[:, :, mid:] > 0
    return out


def _between_lungs(lung_r: np.ndarray, lung_l: np.ndarray, bone: np.ndarray) -> np.ndarray:
    """The mediastinum row by row: voxels between the right lung's and the left lung's medial
    edges in rows (fixed z, y) that cross both lungs and no bone in between (rows through the
    spine keep their paravertebral gutters, where dependent fluid collects)."""
    x = np.arange(lung_r.shape[2])
    right_edge = np.where(lung_r, x, -1).max(axis=2)
    left_edge = np.where(lung_l, x, lung_r.shape[2]).min(axis=2)
    gap = (x > right_edge[:, :, None]) & (x < left_edge[:, :, None])
    both = (right_edge >= 0) & (left_edge < lung_r.shape[2])
    bony = (bone & gap).any(axis=2)
    return (both & ~bony)[:, :, None] & gap


def _behind_lung_middle(lung: np.ndarray) -> np.ndarray:
    """Voxels at or behind (+y) the median y of ``lung`` in their slice (in a slice without
    lung, of the nearest slice with lung: fluid below the lung base, or a slice whose whole
    lung the fluid displaced). Free fluid of a supine patient lies behind the lung it
    compresses; an organ of fluid density under a basal lung crescent (a fatty liver) lies in
    front of it. Everything when there is no lung.
    """
    zs = np.flatnonzero(lung.any(axis=(1, 2)))
    if zs.size == 0:
        return np.ones(lung.shape, dtype=bool)
    middle = np.array([np.median(np.nonzero(lung[z])[0]) for z in zs])
    nearest = np.abs(np.arange(lung.shape[0])[:, None] - zs[None, :]).argmin(axis=1)
    y = np.arange(lung.shape[1])
    return (y[None, :] >= middle[nearest][:, None])[:, :, None] & np.ones(lung.shape, dtype=bool)


def _air_behind(air: np.ndarray, bone: np.ndarray, inside: np.ndarray, reach: int) -> np.ndarray:
    """Voxels with ``air`` inside the rib cage (``inside``) at most ``reach`` voxels behind them
    (+y, the dependent side of a supine patient) and no ``bone`` between.

    Free pleural fluid settles in the most dependent part of the pleural space (Hansell et al.
    2008, "pleural effusion"): nothing aerated lies behind it. Fluid-density tissue with air
    behind it is lung: consolidation around its air bronchograms (Hansell et al. 2008, "air
    bronchogram"), or an organ under a basal lung crescent.
    """
    return _straight_runs(~bone, ((air & inside, 1, max(1, reach), -1),))


def _box_open(mask: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Binary opening by a box (separable min/max filters: fast on large masks)."""
    return ndimage.maximum_filter(ndimage.minimum_filter(mask, size=size), size=size)


def detect_effusion(
    volume: np.ndarray,
    lungs: np.ndarray,
    spacing: Sequence[float],
    lesion_labels: np.ndarray | None = None,
    *,
    lung_additions: np.ndarray | None = None,
    fluid_hu: tuple[float, float] = FLUID_HU,
    min_ml: float = EFFUSION_MIN_ML,
    min_thickness_mm: float = EFFUSION_MIN_THICKNESS_MM,
    search_mm: float = EFFUSION_SEARCH_MM,
) -> Effusion:
    """Detect and measure pleural effusion: fluid density in the dependent pleural space.

    1. Working grid of about 4 x 2.5 x 2.5 mm (block means, then a Gaussian of 1 voxel): the fluid band
       ``fluid_hu`` holds water-like voxels; aerated lung, fat, muscle, bone and contrast-filled
       vessels fall outside it (smoothing in-plane only: thick slices would mix in lung). Next
       to the lung a block is also fluid when half its full-resolution voxels are
       (``FULL_BAND_WIDEN_HU``): the block mean of a thin layer under the lung mixes in air.
    2. Candidates are fluid-band voxels outside the lungs, or inside ``lung_additions`` (dense
       voxels the lesion model gave back to the lungs: a lesion model cannot tell an effusion
       against the chest wall from consolidation cut off by the lung mask).
    3. The pleural space: candidates joined to a lung by a straight run going posteriorly
       (up to 60 mm, through fluid or consolidation) or laterally outwards from the lateral
       half of the lung (``search_mm``), and fluid below such fluid in the lower half of the
       lungs (50 mm: the costophrenic recess) (:func:`_reached_from_lung`), never through
       bone (ribs and spine, closed over the intercostal spaces along z); with bone within
       40 mm outwards (:func:`_inside_rib_cage`); not between the lungs
       (:func:`_between_lungs`); no air within ``AIR_BEHIND_MM`` behind it
       (:func:`_air_behind`: free fluid is the most dependent content of the pleural space;
       fluid-density tissue with air behind it is consolidation around air bronchograms).
       Muscle behind the ribs, the mediastinum, a fatty liver under a basal lung crescent and
       consolidation with air bronchograms are left out.
    4. An opening by a box of ``min_thickness_mm`` (at least 2 working voxels in-plane)
       removes interface partial volume; the opened shape is grown back inside the candidates.
    5. A 3D component is an effusion when it touches a lung, is dependent (its median y
       behind the 75th percentile of that lung's y in its slices), reaches down into the
       lower half of the lung (free fluid collects from the base up), holds >= ``min_ml`` and
       the mean HU of its in-band core is in ``FLUID_MEAN_HU``. Its side is the lung it
       touches most; its parts in front of the middle of that lung (slice by slice) are
       dropped (:func:`_behind_lung_middle`).
    6. Volume: the component redrawn on the full grid within two working voxels, from the
       image smoothed over its non-air voxels only (normalised convolution, Knutsson & Westin
       1993, doi 10.1109/CVPR.1993.341081), so the layer against the lung is not lost to the
       air beside it; band widened by ``REDRAW_WIDEN_HU`` (downwards only within
       ``REDRAW_AIR_MM`` of air), never where air lies behind.

    Known limits: consolidation of water density without air bronchograms next to the
    effusion and cut off by the lung mask is counted with it (CT without contrast cannot
    separate them); loculated or anterior (non-dependent) collections are not looked for.
    """
    sp = check_volume(volume, spacing)
    empty = Effusion(False, 0.0, 0.0, 0.0, 0.0, float("nan"))
    margin = [0] + [math.ceil(search_mm / s) for s in sp[1:]]
    box = bbox(lungs > 0, margin=margin)
    if box is None:
        return empty
    factors = reduction_factors(sp, EFFUSION_GRID_MM)
    work_sp = tuple(s * f for s, f in zip(sp, factors))
    hu = ndimage.gaussian_filter(block_mean(volume[box], factors), (0.0, 1.0, 1.0))
    sub_hu = volume[box]
    full_band = (sub_hu >= fluid_hu[0] - FULL_BAND_WIDEN_HU[0]) & (sub_hu <= fluid_hu[1] + FULL_BAND_WIDEN_HU[1])
    sub_lungs = lungs[box]
    strided = sub_lungs[:: factors[0], :: factors[1], :: factors[2]][: hu.shape[0], : hu.shape[1], : hu.shape[2]]
    lung_r, lung_l = strided == RIGHT_LUNG, strided == LEFT_LUNG
    lung_any = lung_r | lung_l
    # Runs and contact start from any block holding lung: a thin layer of lung over the fluid
    # can fall between the strided samples.
    run_r = block_mean(sub_lungs == RIGHT_LUNG, factors) > 0
    run_l = block_mean(sub_lungs == LEFT_LUNG, factors) > 0
    strict = (hu >= fluid_hu[0]) & (hu <= fluid_hu[1])
    band = strict.copy()
    band |= (block_mean(full_band, factors) >= 0.5) & ndimage.maximum_filter(lung_any, size=3)
    outside = ~lung_any
    if lung_additions is not None and lung_additions.any():
        outside |= lung_additions[box][:: factors[0], :: factors[1], :: factors[2]][: hu.shape[0], : hu.shape[1], : hu.shape[2]]
    fluid = band & outside
    # The rib cage, closed over the intercostal spaces along z.
    close = (max(1, round(RIB_GAP_MM / work_sp[0])) | 1, 3, 3)
    bone = ndimage.minimum_filter(ndimage.maximum_filter(hu > BONE_HU, size=close), size=close) | (hu > BONE_HU)
    # Dense lung cut off by the lung mask (consolidation) may lie between lung and fluid.
    passable = (hu >= PASSABLE_HU[0]) & (hu <= PASSABLE_HU[1]) & ~bone & ~lung_any
    reach = [max(1, round(mm / s)) for mm, s in zip((BASE_SEARCH_MM, DEPENDENT_SEARCH_MM, search_mm), work_sp)]
    # The costophrenic recess lies against the ribs: fluid is followed down only near them (a
    # fatty liver of fluid density under the dome lies deeper).
    recess = fluid & ~bone & _inside_rib_cage(bone, lung_any, [max(1, round(RECESS_RIB_MM / s)) for s in work_sp[1:]])
    fluid &= ~bone & _reached_from_lung(run_r, run_l, passable | fluid, fluid & ~bone, reach, recess)
    inside = _inside_rib_cage(bone, lung_any, [max(1, round(RIB_SEARCH_MM / s)) for s in work_sp[1:]])
    fluid &= inside
    fluid &= ~_between_lungs(lung_r, lung_l, hu > BONE_HU)
    # Fluid-density lung: consolidation around air bronchograms (or an organ under a lung
    # crescent) has air behind it; free fluid does not.
    # (Only around the candidates, grown by the redraw's 2 voxels and the reach behind them.)
    aerated_behind = np.zeros(fluid.shape, dtype=bool)
    air_reach = max(1, round(AIR_BEHIND_MM / work_sp[1]))
    near = bbox(fluid, margin=(0, 2, 2))
    if near is not None:
        near = (near[0], slice(near[1].start, min(fluid.shape[1], near[1].stop + air_reach)), near[2])
        full_near = tuple(slice(s.start * f, s.stop * f) for s, f in zip(near, factors))
        air = block_mean(sub_hu[full_near] < AIR_HU, factors) >= AIR_BLOCK_FRACTION
        aerated_behind[near] = _air_behind(air, bone[near], inside[near], air_reach)
    fluid &= ~aerated_behind
    if not fluid.any():
        return empty
    size = [max(2, round(min_thickness_mm / s)) for s in work_sp]  # 2 voxels at least: a 1-voxel box opens nothing
    if work_sp[0] >= min_thickness_mm:
        size[0] = 1  # thick slices: in-plane opening only
    opened = _box_open(fluid, size)
    if not opened.any():
        return empty
    grown = ndimage.maximum_filter(opened, size=size) & fluid
    comps, _ = ndimage.label(grown, structure=np.ones((3, 3, 3), bool))
    touch_r = ndimage.maximum_filter(run_r, size=5)
    touch_l = ndimage.maximum_filter(run_l, size=5)
    keep = np.zeros(grown.shape, dtype=np.uint8)  # side label of each kept collection
    work_voxel_ml = float(np.prod(work_sp)) / 1000.0
    for label, sl in enumerate(ndimage.find_objects(comps), start=1):
        comp = comps[sl] == label
        n_vox = int(comp.sum())
        if n_vox * work_voxel_ml < min_ml:
            continue
        core = comp & strict[sl]
        mean_hu = float(hu[sl][core].mean()) if core.any() else float("nan")
        if not FLUID_MEAN_HU[0] <= mean_hu <= FLUID_MEAN_HU[1]:
            continue
        contact = {RIGHT_LUNG: int((comp & touch_r[sl]).sum()), LEFT_LUNG: int((comp & touch_l[sl]).sum())}
        side = max(contact, key=contact.get)
        if contact[side] == 0:
            continue
        lung_side = lung_r if side == RIGHT_LUNG else lung_l
        zs = np.unique(np.nonzero(comp)[0] + sl[0].start)
        lung_y = np.nonzero(lung_side[zs])[1]
        comp_y = np.nonzero(comp)[1] + sl[1].start
        if lung_y.size == 0 or np.median(comp_y) < np.percentile(lung_y, DEPENDENT_LUNG_PERCENTILE):
            continue
        lung_zs = np.flatnonzero(lung_side.any(axis=(1, 2)))
        if zs[0] > 0.5 * (lung_zs[0] + lung_zs[-1]):  # free fluid collects from the base up
            continue
        keep[sl][comp] = side
    if not keep.any():
        return empty
    # Only the parts behind the middle of their lung (slice by slice) are kept: what a
    # collection took in front of it is an organ under a basal lung crescent.
    keep[(keep == RIGHT_LUNG) & ~_behind_lung_middle(run_r)] = 0
    keep[(keep == LEFT_LUNG) & ~_behind_lung_middle(run_l)] = 0
    if not keep.any():
        return empty
    # Back to the full grid; the blocky border is redrawn from the full-resolution HU.
    # The rim is grown by two working voxels in-plane first: blocks half lung (or half rib),
    # half fluid were dropped on the working grid, but their fluid voxels are fluid at full
    # resolution (band widened by REDRAW_WIDEN_HU). Smoothing normalised over the non-air
    # voxels (normalised convolution, Knutsson & Westin 1993): aerated lung next to the fluid
    # does not pull its border voxels out of the band. Only the rim's bounding box is smoothed.
    rim = block_expand(ndimage.maximum_filter(keep, size=(1, 5, 5)) * ~aerated_behind, factors, sub_lungs.shape)
    crop = bbox(rim > 0, margin=(0, 4, 4))
    raw = volume[box][crop].astype(np.float32)
    tissue = (raw > AIR_HU).astype(np.float32)
    weight = ndimage.gaussian_filter(tissue, (0.0, 1.0, 1.0))
    smooth = ndimage.gaussian_filter(raw * tissue, (0.0, 1.0, 1.0)) / np.maximum(weight, 1e-3)
    smooth = np.where(tissue > 0, smooth, raw)
    side_full = np.zeros(sub_lungs.shape, dtype=np.uint8)
    # The band is widened downwards only next to air (lung partial volume); elsewhere a voxel
    # below the band is fat or fat-infiltrated chest-wall muscle.
    near = [max(1, round(REDRAW_AIR_MM / s)) for s in sp[1:]]
    near_air = ndimage.maximum_filter(tissue == 0, size=(1, 2 * near[0] + 1, 2 * near[1] + 1))
    low = np.where(near_air, fluid_hu[0] - REDRAW_WIDEN_HU[0], fluid_hu[0])
    side_full[crop] = rim[crop] * ((smooth >= low) & (smooth <= fluid_hu[1] + REDRAW_WIDEN_HU[1]))
    full = np.zeros(volume.shape, dtype=bool)
    full[box] = side_full > 0
    voxel_ml = float(np.prod(sp)) / 1000.0
    kept = bbox(keep > 0, margin=(1, 1, 1))  # the distance transform only around the collection
    depth = ndimage.distance_transform_edt(keep[kept] > 0, sampling=work_sp)
    return Effusion(
        detected=True,
        volume_ml=float(np.count_nonzero(full)) * voxel_ml,
        right_ml=float(np.count_nonzero(side_full == RIGHT_LUNG)) * voxel_ml,
        left_ml=float(np.count_nonzero(side_full == LEFT_LUNG)) * voxel_ml,
        max_depth_mm=float(2.0 * depth.max()),
        mean_hu=float(volume[full].mean()),
        mask=full,
    )


# ----------------------------------------------------------------------------- all
def compute_features(
    volume: np.ndarray,
    lungs: np.ndarray,
    lesion_labels: np.ndarray,
    spacing: Sequence[float],
    *,
    regions: np.ndarray | None = None,
    region_names: Mapping[int, str] | None = None,
    region_kind: str = "zones",
    lung_additions: np.ndarray | None = None,
) -> Features:
    """Every feature of one analysis (see the module docstring and ``docs/methods.md``).

    Parameters
    ----------
    volume
        HU ``[z, y, x]``.
    lungs
        uint8 lung labels (1 right, 2 left) on the same grid.
    lesion_labels
        uint8 lesion labels (1 GGO, 2 consolidation).
    spacing
        Voxel size ``(z, y, x)`` in mm.
    regions, region_names, region_kind
        Optional region label map (lobes) for per-region burden; lung zones when ``None``.
    lung_additions
        Voxels the lesion step added to the lungs (:attr:`LesionMasks.lung_additions`): fluid
        there is effusion the lesion model took for consolidation.

    Returns
    -------
    Features
        Voxels of a detected effusion are taken out of the lesion labels before the lesion
        features are measured (fluid is not consolidation).
    """
    sp = check_volume(volume, spacing)
    if lungs.shape != volume.shape or lesion_labels.shape != volume.shape:
        raise ValueError(f"volume {volume.shape}, lungs {lungs.shape} and lesions {lesion_labels.shape} differ")
    effusion = detect_effusion(volume, lungs, sp, lesion_labels, lung_additions=lung_additions)
    # Everything else happens inside the lungs: crop to them once.
    box = bbox(lungs > 0) or tuple(slice(0, n) for n in volume.shape)
    volume, lungs, lesion_labels = volume[box], lungs[box], lesion_labels[box]
    if regions is not None:
        regions = regions[box]
    if effusion.mask is not None:
        fluid = effusion.mask[box]
        lesion_labels = np.where(fluid, 0, lesion_labels).astype(np.uint8)
        lungs = np.where(fluid, 0, lungs).astype(np.uint8)
    lesion = (lesion_labels > 0) & (lungs > 0)
    components = lesion_components(lesion, sp)
    return Features(
        burden=burden_features(
            lungs, lesion_labels, sp, regions=regions, region_names=region_names, region_kind=region_kind
        ),
        distribution=distribution_features(lungs, lesion_labels, sp, components=components),
        pattern=pattern_features(
            volume, lungs, lesion_labels, sp, components=components, effusion=None if effusion.mask is None else fluid
        ),
        effusion=effusion,
    )
