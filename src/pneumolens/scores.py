"""Semi-quantitative CT scores of pneumonia per lobe (or zone), per lung and for the whole lungs.

* **CT severity score** (Pan et al., "Time course of lung changes at chest CT during recovery
  from coronavirus disease 2019 (COVID-19)", Radiology 295(3):715-721, 2020,
  doi 10.1148/radiol.2020200370): each of the five lobes scores 0-5 by the share of it that is
  involved - 0 none, 1 < 5 %, 2 5-25 %, 3 26-50 %, 4 51-75 %, 5 > 75 % - and the total is 0-25.
  Here "involved" is the lesion volume (GGO + consolidation) over the lobe volume, measured
  rather than estimated by eye.
* **Percentage of opacity (PO)** and **percentage of high opacity (PHO)** as reported by Siemens
  Healthineers' AI-Rad Companion Chest CT (Chaganti et al., "Automated quantification of CT
  patterns associated with COVID-19 from chest CT", Radiol Artif Intell 2(4):e200048, 2020,
  doi 10.1148/ryai.2020200048): PO = 100 x lesion volume / lung volume; PHO = 100 x volume of
  the lesion voxels denser than -200 HU (high opacity, consolidation-like) / lung volume.
  Per region (lung, lobe) the denominator is that region's volume.
* **Lung severity score (LSS)**, also from Chaganti et al.: 0-4 per lobe (0 none, 1 1-25 %,
  2 26-50 %, 3 51-75 %, 4 76-100 % involved), total 0-20.

All functions take the canonical ``[z, y, x]`` HU volume, a region label map and the lesion
labels; nothing here depends on how the regions were made.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: Lesion voxels above this HU count as high opacity (Chaganti et al. 2020).
HIGH_OPACITY_HU = -200.0
#: Upper edges (%) of Pan et al.'s lobe scores 1-4; above the last edge the score is 5.
PAN_EDGES = (5.0, 25.0, 50.0, 75.0)
#: Upper edges (%) of Chaganti et al.'s LSS 1-3; above the last edge the score is 4.
LSS_EDGES = (25.0, 50.0, 75.0)


def pan_lobe_score(involved_percent: float) -> int | None:
    """Pan et al. (2020) lobe score 0-5 from the involved share of a lobe (%); ``None`` for NaN.

    0 only when nothing is involved; ``< 5`` -> 1; ``5-25`` -> 2; ``> 25-50`` -> 3;
    ``> 50-75`` -> 4; ``> 75`` -> 5.
    """
    if not np.isfinite(involved_percent):
        return None
    if involved_percent <= 0.0:
        return 0
    if involved_percent < PAN_EDGES[0]:
        return 1
    for score, edge in enumerate(PAN_EDGES[1:], start=2):
        if involved_percent <= edge:
            return score
    return 5


def lss_lobe_score(involved_percent: float) -> int | None:
    """Chaganti et al. (2020) lung severity score 0-4 per lobe from the involved share (%)."""
    if not np.isfinite(involved_percent):
        return None
    if involved_percent <= 0.0:
        return 0
    for score, edge in enumerate(LSS_EDGES, start=1):
        if involved_percent <= edge:
            return score
    return 4


def opacity_percentages(
    volume: np.ndarray, region: np.ndarray, lesion_labels: np.ndarray, *, high_hu: float = HIGH_OPACITY_HU
) -> tuple[float, float]:
    """``(PO, PHO)`` in % of the boolean ``region``: lesion share, and share of lesion voxels above ``high_hu``.

    NaN for an empty region.
    """
    n = int(np.count_nonzero(region))
    if n == 0:
        return float("nan"), float("nan")
    lesion = (lesion_labels > 0) & region
    n_lesion = int(np.count_nonzero(lesion))
    n_high = int(np.count_nonzero(volume[lesion] > high_hu))
    return 100.0 * n_lesion / n, 100.0 * n_high / n


def region_slice_counts(region_labels: np.ndarray, lesion_labels: np.ndarray, names: Mapping[int, str]
                        ) -> dict[str, np.ndarray]:
    """Lesion voxels of each region on each axial slice: ``{name: int array (Z,)}``."""
    n_labels = max(names) + 1 if names else 1
    z = np.broadcast_to(np.arange(region_labels.shape[0])[:, None, None], region_labels.shape)
    sel = (lesion_labels > 0) & (region_labels > 0)
    flat = z[sel] * n_labels + region_labels[sel].astype(np.int64)
    counts = np.bincount(flat, minlength=region_labels.shape[0] * n_labels).reshape(region_labels.shape[0], n_labels)
    return {name: counts[:, label].astype(np.int64) for label, name in names.items()}


def opacity_by_label(volume: np.ndarray, labels: np.ndarray, lesion_labels: np.ndarray, *,
                     high_hu: float = HIGH_OPACITY_HU) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel counts per label value of ``labels``: all, lesion, lesion above ``high_hu``.

    Only labelled voxels are counted (entry 0 is 0): counting over them alone keeps
    ``np.bincount``'s int64 copy of its input to the lungs instead of the whole volume.
    """
    n = int(labels.max(initial=0)) + 1
    inside = labels > 0
    values = labels[inside]
    lesion = lesion_labels[inside] > 0
    total = np.bincount(values, minlength=n)
    in_lesion = np.bincount(values[lesion], minlength=n)
    high = np.bincount(values[lesion & (volume[inside] > high_hu)], minlength=n)
    total[0] = in_lesion[0] = high[0] = 0
    return total, in_lesion, high


def region_scores(
    volume: np.ndarray, lung_labels: np.ndarray, lesion_labels: np.ndarray, region_labels: np.ndarray | None,
    names: Mapping[int, str] | None, *, high_hu: float = HIGH_OPACITY_HU,
) -> dict[str, dict[str, float | int | None]]:
    """PO and PHO (%) per lung, for both lungs and per region; Pan score (0-5) and LSS (0-4) per region.

    Returns ``{name: {"po_percent", "pho_percent"[, "score", "lss"]}}`` with the lung names of
    :meth:`pneumolens.masks.LungMasks.regions` (``right_lung``, ``left_lung``, ``lungs``) first.
    """
    from pneumolens.masks import LUNG_SIDES, WHOLE_LUNGS

    idx = np.nonzero(lung_labels.any(axis=(0, 1)))[0]
    box = (slice(None), slice(None), slice(int(idx[0]), int(idx[-1]) + 1)) if idx.size else (slice(None),) * 3
    vol, lungs, lesions = volume[box], lung_labels[box], lesion_labels[box]
    out: dict[str, dict[str, float | int | None]] = {}

    def pct(a: float, b: float) -> float:
        return 100.0 * a / b if b else float("nan")

    total, les, high = opacity_by_label(vol, lungs, lesions, high_hu=high_hu)
    for label, side in LUNG_SIDES.items():
        n = total[label] if label < total.size else 0
        out[f"{side}_lung"] = {"po_percent": pct(les[label] if label < les.size else 0, n),
                               "pho_percent": pct(high[label] if label < high.size else 0, n)}
    out[WHOLE_LUNGS] = {"po_percent": pct(les[1:].sum(), total[1:].sum()),
                        "pho_percent": pct(high[1:].sum(), total[1:].sum())}
    if region_labels is not None and names:
        total, les, high = opacity_by_label(vol, region_labels[box], lesions, high_hu=high_hu)
        for label, name in sorted(names.items()):
            n = total[label] if label < total.size else 0
            po = pct(les[label] if label < les.size else 0, n)
            out[name] = {"po_percent": po, "pho_percent": pct(high[label] if label < high.size else 0, n),
                         "score": pan_lobe_score(po), "lss": lss_lobe_score(po)}
    return out


def compute_scores(volume: np.ndarray, lung_labels: np.ndarray, lesion_labels: np.ndarray, regions=None):
    """:class:`pneumolens.analysis.Scores` of an analysis (regions: lobes, zones or ``None``).

    The 0-25 CT severity score and the 0-20 LSS are only defined over the five lobes; with zones
    or no regions they are ``None`` (the per-zone 0-5 scores are still given).
    """
    from pneumolens.analysis import LOBE_NAMES, Scores
    from pneumolens.masks import WHOLE_LUNGS

    names = regions.names if regions is not None else None
    per = region_scores(volume, lung_labels, lesion_labels, None if regions is None else regions.labels, names)
    total = lss = None
    if regions is not None and regions.kind == "lobes" and set(regions.names.values()) == set(LOBE_NAMES.values()):
        lobe_scores = [per[n]["score"] for n in LOBE_NAMES.values()]
        lobe_lss = [per[n]["lss"] for n in LOBE_NAMES.values()]
        if all(v is not None for v in lobe_scores):
            total = int(sum(lobe_scores))
            lss = int(sum(lobe_lss))
    method = "lungs" if regions is None else f"{regions.kind}:{regions.method}"
    return Scores(method=method, ct_severity_0_25=total, lung_severity_0_20=lss,
                  po_percent=float(per[WHOLE_LUNGS]["po_percent"]), pho_percent=float(per[WHOLE_LUNGS]["pho_percent"]),
                  per_region=per)
