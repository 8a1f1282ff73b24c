"""Density (HU band) segmentation of pneumonia lesions inside the lungs.

The method, in order:

1. Crop to the lungs; outside the lung mask the image is set to normal lung (-850 HU), so the
   chest wall, mediastinum and diaphragm cannot leak in and the partial-volume rim at the lung
   border becomes a thin structure.
2. Light Gaussian smoothing (``smoothing_mm``) against noise.
3. Band mask: ``ggo_hu[0] <= HU <= consolidation_hu[1]`` (Fleischner glossary, Hansell et al.,
   Radiology 246(3), 2008, doi 10.1148/radiol.2462070712; well-aerated lung is -950..-700 HU as
   in Colombi et al., Radiology 296(2), 2020, doi 10.1148/radiol.2020201433); in-slice holes
   (air bronchograms, noise dips) filled.
4. Vessel suppression: binary opening of the band mask by a box of half-width ``vessel_mm``
   (rounded to whole voxels per axis). Structures narrower than about ``2 * vessel_mm``
   (vessels, fissures, the border rim, airway walls) vanish, opacities wider than the box keep
   their shape; one conditional dilation gives back the corners the box shaved. This is the
   morphological (top-hat) vessel suppression of lung CAD (e.g. Sluimer et al., "Computer
   analysis of computed tomography scans of the lung: a survey", IEEE TMI 25(4), 2006,
   doi 10.1109/TMI.2005.862753).
5. Connected components smaller than ``min_lesion_ml`` are dropped.
6. GGO where the smoothed HU is below ``ggo_hu[1]``, consolidation above; voxels outside both
   bands inside a lesion (bronchograms) take the label around them (consolidation wins).

The probability map is a soft version of the bands on the smoothed image: a logistic step up
at the lower GGO limit times a step down at the upper consolidation limit, both of width
``softness_hu``, capped at 0.4 where the opening removed the voxel (thin, vessel-like); it is 0
outside the lungs. Labels are the voxels with score >= 0.5 that survive the opening and the
size cleanup (plus bronchograms), so a voxel in a dropped small component can score >= 0.5
without a label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.special import expit

from pneumolens.grid import bbox, check_volume, fill_slices, remove_small
from pneumolens.masks import CONSOLIDATION, GGO, LesionMasks, LungMasks

NORMAL_LUNG_HU = -850.0
THIN_SCORE_CAP = 0.4


def segment_lesions_density(
    volume: np.ndarray,
    spacing: Sequence[float],
    lungs: LungMasks,
    *,
    ggo_hu: tuple[float, float] = (-725.0, -300.0),
    consolidation_hu: tuple[float, float] = (-300.0, 100.0),
    min_lesion_ml: float = 0.5,
    vessel_mm: float = 4.0,
    smoothing_mm: float = 1.0,
    softness_hu: float = 40.0,
) -> LesionMasks:
    """Segment ground-glass opacity and consolidation by density inside the lungs.

    Parameters
    ----------
    volume
        HU array ``(Z, Y, X)``, canonical layout. Not modified.
    spacing
        Voxel size ``(z, y, x)`` in mm.
    lungs
        Lung masks on the same grid (:func:`pneumolens.anatomy.segment_lungs`).
    ggo_hu, consolidation_hu
        ``(low, high)`` HU bands of ground-glass opacity and consolidation; GGO is
        ``low <= HU < high``, consolidation ``low <= HU <= high``. Denser voxels (calcification,
        contrast-filled vessels) are not lesion.
    min_lesion_ml
        Connected lesions smaller than this (mL) are dropped.
    vessel_mm
        Half-width (mm) of the box of the binary opening that removes vessels: structures
        narrower than about twice this disappear.
    smoothing_mm
        Standard deviation (mm) of the Gaussian smoothing applied first.
    softness_hu
        Width (HU) of the logistic steps of the probability map.

    Returns
    -------
    LesionMasks
        ``labels`` 1 GGO / 2 consolidation, ``probability`` the soft HU score,
        ``method="density"``.
    """
    sp = check_volume(volume, spacing)
    if lungs.labels.shape != volume.shape:
        raise ValueError(f"lung masks {lungs.labels.shape} and volume {volume.shape} differ in shape")
    if not (ggo_hu[0] < ggo_hu[1] and consolidation_hu[0] < consolidation_hu[1]):
        raise ValueError(f"HU bands must be (low, high) with low < high, got {ggo_hu}, {consolidation_hu}")
    labels = np.zeros(volume.shape, dtype=np.uint8)
    probability = np.zeros(volume.shape, dtype=np.float32)
    lung = lungs.union
    half = [round(vessel_mm / s) for s in sp]
    box = bbox(lung, margin=[h + 1 for h in half])
    if box is None:
        return LesionMasks(labels=labels, probability=probability, method="density")

    m = lung[box]
    hu = np.where(m, volume[box].astype(np.float32), np.float32(NORMAL_LUNG_HU))
    sigma = [smoothing_mm / s for s in sp]
    hu = ndimage.gaussian_filter(hu, sigma=[s if s >= 0.3 else 0 for s in sigma])

    band = m & (hu >= ggo_hu[0]) & (hu <= consolidation_hu[1])
    # Air bronchograms and noise dips are holes in an opacity, not gaps between vessels.
    band = fill_slices(band) & m
    wide = _open_box(band, half)
    # Give back the border the box corners shaved off, within the band.
    wide = ndimage.binary_dilation(wide, iterations=1, mask=band) | wide

    voxel_ml = float(np.prod(sp)) / 1000.0
    lesion = remove_small(wide, int(np.ceil(min_lesion_ml / voxel_ml)))
    sub = np.zeros(m.shape, dtype=np.uint8)
    sub[lesion] = np.where(hu[lesion] < ggo_hu[1], GGO, CONSOLIDATION)
    # Voxels outside both bands inside a lesion (bronchograms) take the label around them.
    outside_bands = lesion & ((hu < ggo_hu[0]) | (hu > consolidation_hu[1]))
    if outside_bands.any():
        r = [0] + [max(1, round(3.0 / s)) for s in sp[1:]]
        inner = np.where(outside_bands, 0, sub).astype(np.uint8)
        around = ndimage.maximum_filter(inner, size=[2 * x + 1 for x in r])
        sub[outside_bands] = np.maximum(around[outside_bands], GGO)

    score = _band_score(hu[m], ggo_hu[0], consolidation_hu[1], softness_hu)
    # Thin (vessel-like) voxels are capped below 0.5: the opening decided they are not lesion.
    thin = ~wide[m]
    score[thin] = np.minimum(score[thin], THIN_SCORE_CAP)
    labels[box] = sub
    probability[box][m] = score
    return LesionMasks(labels=labels, probability=probability, method="density")


def _open_box(mask: np.ndarray, half: Sequence[int]) -> np.ndarray:
    """Binary opening by a box of half-widths ``half`` (separable min/max filters: fast)."""
    size = [2 * h + 1 for h in half]
    u8 = mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8)
    return ndimage.maximum_filter(ndimage.minimum_filter(u8, size=size), size=size) > 0


def _band_score(hu: np.ndarray, low: float, high: float, width: float) -> np.ndarray:
    """Logistic step up at ``low`` times step down at ``high`` (0.5 at either limit), float32."""
    w = np.float32(max(float(width), 1e-3) / 4.0)  # ~98 % of the step happens within +-width
    up = expit((hu - np.float32(low)) / w)
    up *= expit((np.float32(high) - hu) / w)
    return up.astype(np.float32, copy=False)
