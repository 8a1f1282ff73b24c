"""Quantification of lungs and lesions: volumes, HU statistics, per-slice profile.

Regions are generic (a name and a boolean mask), so the lobes of a later stage plug in as more
regions without changing this module. Empty regions give NaN for ratios and means (never 0),
so that "no lung found here" cannot read as "no disease here".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from pneumolens.grid import bbox
from pneumolens.masks import CONSOLIDATION, GGO, WHOLE_LUNGS, LesionMasks, LungMasks

if TYPE_CHECKING:
    from pneumolens.analysis import Regions

# HU bands reported as fractions of each region's volume. Edges follow common quantitative
# chest-CT practice: < -950 emphysema-like (Gevenois et al. 1996), -950..-700 normally aerated,
# -700..-300 ground-glass range, -300..+100 consolidation range (e.g. Lanza et al. 2020,
# doi 10.1186/s41747-020-00189-0 use -700/-500/-100 variants), > +100 calcification / vessel wall.
HU_BANDS: tuple[tuple[str, float, float], ...] = (
    ("below_-950", -np.inf, -950.0),
    ("-950_to_-700", -950.0, -700.0),
    ("-700_to_-300", -700.0, -300.0),
    ("-300_to_100", -300.0, 100.0),
    ("above_100", 100.0, np.inf),
)


@dataclass(frozen=True)
class RegionFindings:
    """Quantities of one region (a lung, the whole lungs, later a lobe). Volumes in mL."""

    name: str
    volume_ml: float
    lesion_ml: float
    lesion_percent: float
    ggo_ml: float
    consolidation_ml: float
    mean_hu: float
    lesion_mean_hu: float
    hu_band_fractions: dict[str, float]


@dataclass(frozen=True)
class SliceFindings:
    """One input slice (canonical index ``index``, 0 = most inferior)."""

    index: int
    z_mm: float
    source_file: str | None
    lung_voxels: int
    lesion_voxels: int
    ggo_voxels: int
    consolidation_voxels: int
    lesion_ml: float
    max_probability: float


@dataclass(frozen=True)
class Findings:
    regions: tuple[RegionFindings, ...]
    slices: tuple[SliceFindings, ...]

    def region(self, name: str) -> RegionFindings:
        """The findings of the region called ``name`` (see :meth:`LungMasks.regions`)."""
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(f"no region named {name!r}; have {[r.name for r in self.regions]}")

    @property
    def whole_lungs(self) -> RegionFindings:
        """The findings of both lungs together."""
        return self.region(WHOLE_LUNGS)

    def to_dict(self) -> dict:
        return {"regions": [asdict(r) for r in self.regions], "slices": [asdict(s) for s in self.slices]}


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def region_findings(
    name: str, region: np.ndarray, volume: np.ndarray, lesion_labels: np.ndarray, *, voxel_ml: float
) -> RegionFindings:
    """Quantify ``lesion_labels`` inside the boolean ``region`` of the HU ``volume``.

    All arrays share one ``(Z, Y, X)`` grid; ``voxel_ml`` is one voxel's volume in mL.
    """
    hu = volume[region]
    labels = lesion_labels[region]
    n = hu.size
    n_ggo = int(np.count_nonzero(labels == GGO))
    n_cons = int(np.count_nonzero(labels == CONSOLIDATION))
    n_lesion = n_ggo + n_cons
    bands = {
        band: (float(np.count_nonzero((hu >= lo) & (hu < hi))) / n if n else float("nan"))
        for band, lo, hi in HU_BANDS
    }
    return RegionFindings(
        name=name,
        volume_ml=n * voxel_ml,
        lesion_ml=n_lesion * voxel_ml,
        lesion_percent=100.0 * n_lesion / n if n else float("nan"),
        ggo_ml=n_ggo * voxel_ml,
        consolidation_ml=n_cons * voxel_ml,
        mean_hu=_mean(hu),
        lesion_mean_hu=_mean(hu[labels > 0]),
        hu_band_fractions=bands,
    )


def slice_profile(
    lung_mask: np.ndarray,
    lesions: LesionMasks,
    *,
    voxel_ml: float,
    z_positions_mm: tuple[float, ...],
    source_files: tuple[str | None, ...] = (),
) -> tuple[SliceFindings, ...]:
    """Per-slice lung and lesion counts along z (one entry per slice of the volume); ``lung_mask``
    is the boolean ``(Z, Y, X)`` union of the lungs."""
    labels = lesions.labels
    lung_counts = np.count_nonzero(lung_mask, axis=(1, 2))
    ggo_counts = np.count_nonzero(labels == GGO, axis=(1, 2))
    cons_counts = np.count_nonzero(labels == CONSOLIDATION, axis=(1, 2))
    prob = np.max(lesions.probability, axis=(1, 2), where=lung_mask, initial=0.0)  # no volume-sized temporary
    files = source_files or (None,) * labels.shape[0]
    return tuple(
        SliceFindings(
            index=k,
            z_mm=float(z_positions_mm[k]),
            source_file=files[k],
            lung_voxels=int(lung_counts[k]),
            lesion_voxels=int(ggo_counts[k] + cons_counts[k]),
            ggo_voxels=int(ggo_counts[k]),
            consolidation_voxels=int(cons_counts[k]),
            lesion_ml=float(ggo_counts[k] + cons_counts[k]) * voxel_ml,
            max_probability=float(prob[k]),
        )
        for k in range(labels.shape[0])
    )


def _in_plane_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """All slices, and the y/x bounding box of ``mask`` (the whole plane when it is empty)."""
    box = bbox(mask.any(axis=0))
    return (slice(None),) * 3 if box is None else (slice(None), *box)


def quantify(
    volume: np.ndarray,
    lungs: LungMasks,
    lesions: LesionMasks,
    *,
    spacing: tuple[float, float, float],
    z_positions_mm: tuple[float, ...],
    source_files: tuple[str | None, ...] = (),
    regions: Regions | None = None,
) -> Findings:
    """Findings for each lung, both lungs (:meth:`LungMasks.regions`) and each of ``regions``.

    Parameters
    ----------
    volume
        HU array ``(Z, Y, X)``.
    lungs, lesions
        Masks on the same grid.
    spacing
        Voxel size ``(z, y, x)`` in mm.
    z_positions_mm, source_files
        Per slice: patient z of the slice centre and the file it came from.
    regions
        Lobes or zones (:class:`pneumolens.analysis.Regions`); each named region is quantified
        after the lung regions, in label order.
    """
    if lesions.labels.shape != volume.shape or lungs.labels.shape != volume.shape:
        raise ValueError(
            f"volume {volume.shape}, lungs {lungs.labels.shape} and lesions {lesions.labels.shape} differ"
        )
    if regions is not None and regions.labels.shape != volume.shape:
        raise ValueError(f"regions {regions.labels.shape} and volume {volume.shape} differ")
    if len(z_positions_mm) != volume.shape[0]:
        raise ValueError(f"need one z position per slice: {len(z_positions_mm)} for {volume.shape[0]} slices")
    voxel_ml = float(np.prod(spacing)) / 1000.0
    # Everything is counted inside the lungs: crop the plane to them once (a 3-5x speed-up).
    box = _in_plane_box(lungs.labels > 0)
    volume = volume[box]
    cropped = LungMasks(lungs.labels[box], lungs.airways[box])
    lesions = LesionMasks(lesions.labels[box], lesions.probability[box], lesions.method)
    named = cropped.regions()
    if regions is not None:
        named += [(name, mask[box]) for name, mask in regions.masks()]
    return Findings(
        regions=tuple(region_findings(name, mask, volume, lesions.labels, voxel_ml=voxel_ml) for name, mask in named),
        slices=slice_profile(
            cropped.union, lesions, voxel_ml=voxel_ml, z_positions_mm=z_positions_mm, source_files=source_files
        ),
    )
