"""Left and right lung masks from a chest CT, airways out, dense lesions kept in.

The method is classical image processing (no model), fast on a CPU:

1. Work on a reduced grid (block means to about 1.2 mm in-plane and 2.5 mm along z) with a
   light in-plane Gaussian; masks go back to the full grid at the end.
2. Body: largest component above ``air_hu``, holes filled slice by slice. Lung candidates: air
   (``< air_hu``) inside the body.
3. Trachea and main bronchi: a round midline air tube of tracheal size is found in the most
   superior slices and tracked downwards slice by slice through the air components it overlaps;
   where a component's area explodes (it merged with lung parenchyma) only its pieces below the
   stricter ``airway_hu`` are followed, and a branch with none ends (leak control). The tracked airways and a one-voxel rim are removed.
4. Lungs: the two largest lung-like components (mean HU above ``gas_hu`` so that bowel and
   stomach gas do not count); a single component straddling the midline (lungs touching at the
   anterior junction) is split by in-plane erosion and nearest-seed reassignment, or at the
   midline as a last resort.
5. Dense lesions: per slice, the convex hull of each lung adds the concavities that consolidation
   or pleural-based lesions cut into it, but only voxels below ``max_hull_hu`` (no bone) inside
   the body, and only concavities whose hull chord faces outwards (farther from the body centre
   than the lung: the heart, aorta, hila and the liver/spleen domes under the lung bases lie on
   the inner side and stay out) and runs along the chest wall (mean distance to the body surface
   or to bone at most ``wall_mm``). Air pieces cut off a lung by consolidation are then
   re-attached when they touch it; bowel and stomach gas, behind the diaphragm, do not.
   Finally each lung grows (up to 10 mm, in-plane) into connected voxels below ``opacity_hu``,
   which recovers ground-glass at the lung border.
6. Cavities are filled in 3D, then in-slice holes up to ``SLICE_HOLE_MAX_MM2`` (vessels and
   bronchi entering at the hilum); a bigger in-slice hole, open in 3D, is the dome of the liver
   or spleen ringed by a lung base and stays out.

References: Hu, Hoffman & Reinhardt, "Automatic lung segmentation for accurate quantitation of
volumetric X-ray CT images", IEEE TMI 20(6), 2001, doi 10.1109/42.929615 (threshold, airway
removal, left/right separation); Mori et al., "Automated extraction and visualization of bronchus
from 3D CT images of lung", CVRMed 1995, doi 10.1007/978-3-540-49197-2_71 (region growing with
explosion control); Hofmanninger et al., "Automatic lung segmentation in routine imaging is
primarily a data diversity problem, not a methodology problem", Eur Radiol Exp 4:50, 2020,
doi 10.1186/s41747-020-00173-2 (why dense pathology must stay inside the lung mask).
"""

from __future__ import annotations

from collections.abc import Sequence

import cc3d
import numpy as np
from scipy import ndimage

from pneumolens.errors import InputError
from pneumolens.grid import (
    bbox,
    block_expand,
    block_mean,
    check_volume,
    component_sizes,
    fill_3d_and_slices,
    fill_slices,
    largest_component,
    reduction_factors,
)
from pneumolens.masks import LEFT_LUNG, RIGHT_LUNG, LungMasks

WORK_SPACING_MM = (2.5, 1.2, 1.2)
TRACHEA_AREA_MM2 = (40.0, 800.0)  # lumen area of a trachea, 7-32 mm in diameter
AIRWAY_MAX_AREA_MM2 = 1200.0  # a tracked airway section larger than this has leaked into lung
BONE_HU = 250.0
# In-slice holes up to this area are filled (vessels, bronchi, lesions that reach the hilum);
# bigger ones only when enclosed in 3D, so the liver/spleen dome ringed by a lung base stays out.
SLICE_HOLE_MAX_MM2 = 1000.0

_PLANE = np.zeros((3, 3, 3), dtype=bool)
_PLANE[1] = ndimage.generate_binary_structure(2, 1)


def segment_lungs(
    volume: np.ndarray,
    spacing: Sequence[float],
    *,
    min_component_ml: float = 5.0,
    min_lung_ml: float = 300.0,
    min_lung_fraction: float = 0.15,
    air_hu: float = -500.0,
    airway_hu: float = -900.0,
    gas_hu: float = -950.0,
    opacity_hu: float = -300.0,
    max_hull_hu: float = 150.0,
    wall_mm: float = 30.0,
) -> LungMasks:
    """Segment the right and left lungs of a chest CT.

    Parameters
    ----------
    volume
        HU array ``(Z, Y, X)``, canonical LPS (z inferior->superior, y anterior->posterior,
        x right->left). Not modified.
    spacing
        Voxel size ``(z, y, x)`` in mm.
    min_component_ml
        Air components smaller than this (mL) are ignored.
    min_lung_ml, min_lung_fraction
        The series is taken to contain no lungs when the two lungs add up to less than
        ``min_lung_ml`` (mL) and less than ``min_lung_fraction`` of the body volume in the scan
        (the second rule accepts thin slabs through the chest).
    air_hu
        Threshold (HU, on the lightly smoothed image) below which a voxel is air or lung.
    airway_hu
        Stricter threshold (HU) for the airway lumen, followed where the tracked airway touches
        lung parenchyma.
    gas_hu
        Air components whose mean HU is below this are pure gas (bowel, stomach), not lung.
    opacity_hu
        The lungs grow (up to 10 mm) into connected voxels below this (HU): ground-glass
        opacities at the lung border that ``air_hu`` cuts off.
    max_hull_hu
        Voxels added to the lung to recover dense lesions must be below this (HU, no bone).
    wall_mm
        A concavity is filled only if its hull chord lies within this distance (mm) of the body
        surface or of bone, i.e. along the chest wall.

    Returns
    -------
    LungMasks
        ``labels`` 1 right / 2 left lung, ``airways`` the removed trachea and main bronchi.

    Raises
    ------
    InputError
        When no lungs are found (see ``min_lung_ml``).
    """
    sp = check_volume(volume, spacing)
    factors = reduction_factors(sp, WORK_SPACING_MM)
    wsp = tuple(s * f for s, f in zip(sp, factors))
    sm = block_mean(volume, factors)
    sigma_yx = 1.0 / wsp[1]
    if sigma_yx >= 0.3:
        sm = ndimage.gaussian_filter(sm, sigma=(0.0, sigma_yx, sigma_yx))
    voxel_ml = float(np.prod(wsp)) / 1000.0

    body = _body_mask(sm, air_hu)
    air = (sm < air_hu) & body
    airways = _track_airways(air, (sm < airway_hu) & body, body, wsp)
    # The airway wall's partial-volume rim is below air_hu too: take one voxel around the lumen.
    airways_wide = ndimage.binary_dilation(airways, structure=_PLANE) & air
    labels, fragments = _pick_lungs(air & ~airways_wide, sm, body, voxel_ml, wsp,
                                    min_component_ml=min_component_ml, min_lung_ml=min_lung_ml,
                                    min_lung_fraction=min_lung_fraction, gas_hu=gas_hu)
    labels = _close_dense_lesions(labels, sm, body, wsp, max_hull_hu=max_hull_hu, wall_mm=wall_mm)
    labels = _attach_fragments(labels, fragments)
    labels = _grow_into_opacities(labels, (sm < opacity_hu) & body & ~airways_wide, wsp, grow_mm=10.0)
    max_hole_px = int(SLICE_HOLE_MAX_MM2 / (wsp[1] * wsp[2]))
    for lab in (RIGHT_LUNG, LEFT_LUNG):
        filled = fill_3d_and_slices(labels == lab, max_hole_px=max_hole_px)
        labels[filled & (labels == 0)] = lab
    removed = airways_wide & (labels == 0)

    labels_full = block_expand(labels, factors, volume.shape)
    airways_full = block_expand(removed, factors, volume.shape)
    if any(f > 1 for f in factors[1:]):
        labels_full = _refine_border(labels_full, volume, labels, air, airways_wide, factors, air_hu=air_hu)
    return LungMasks(labels=labels_full, airways=airways_full)


def _refine_border(labels_full: np.ndarray, volume: np.ndarray, labels: np.ndarray, air: np.ndarray,
                   airways: np.ndarray, factors: Sequence[int], *, air_hu: float) -> np.ndarray:
    """Redraw the air/tissue border of the lungs at full in-plane resolution.

    Nearest-neighbour upsampling makes the border blocky (half the blocks that straddle it are
    lost or gained). Working-grid voxels on the lung border that the air threshold decided are
    redrawn from the full-resolution HU (3x3 in-plane mean) against ``air_hu``; voxels the lung
    took in for being dense (lesions from the hull step, ground-glass growth, filled holes)
    stay as they are.
    """
    lung = labels > 0
    band = ndimage.binary_dilation(lung, structure=_PLANE) & ~ndimage.binary_erosion(lung, structure=_PLANE)
    band &= ~(lung & ~air) & ~airways
    if not band.any():
        return labels_full
    # Border voxels outside the lung take the label of the lung next to them.
    nearest = ndimage.grey_dilation(labels, footprint=_PLANE)
    zz, yy, xx = np.nonzero(block_expand(band, factors, volume.shape))
    # 3x3 in-plane mean HU, gathered at the border voxels only.
    hu = np.zeros(zz.size, dtype=np.float32)
    ny, nx = volume.shape[1:]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            hu += volume[zz, np.clip(yy + dy, 0, ny - 1), np.clip(xx + dx, 0, nx - 1)]
    hu /= 9.0
    fz, fy, fx = factors
    out = labels_full.copy()
    out[zz, yy, xx] = np.where(hu < air_hu, nearest[zz // fz, yy // fy, xx // fx], 0)
    return out


def _body_mask(sm: np.ndarray, air_hu: float) -> np.ndarray:
    """The patient: largest component denser than air, holes filled in every slice."""
    return fill_slices(largest_component(sm > air_hu, connectivity=6))


def _components_2d(mask2d: np.ndarray) -> tuple[np.ndarray, int]:
    return cc3d.connected_components(mask2d, connectivity=4, return_N=True)


def _find_trachea_start(air: np.ndarray, body: np.ndarray, wsp: Sequence[float], *,
                        below: int) -> tuple[int, np.ndarray] | None:
    """The most superior slice under ``below`` with a round midline air tube of tracheal size."""
    pix_mm2 = wsp[1] * wsp[2]
    lo, hi = (a / pix_mm2 for a in TRACHEA_AREA_MM2)
    xs = np.arange(air.shape[2])
    for k in range(min(below, air.shape[0]) - 1, -1, -1):
        if not air[k].any() or not body[k].any():
            continue
        body_cx = float(xs[body[k].any(axis=0)].mean())
        lab, n = _components_2d(air[k])
        best = None
        for i, (area, (cy, cx)) in enumerate(_areas_centroids(lab, n), start=1):
            if not lo <= area <= hi or abs(cx - body_cx) * wsp[2] > 25.0:
                continue
            comp = lab == i
            ys, xs_ = np.nonzero(comp)
            extent = max(np.ptp(ys) + 1, np.ptp(xs_) + 1)
            if area < 0.45 * np.pi * (extent / 2) ** 2:  # not round enough
                continue
            if best is None or area > best[0]:
                best = (area, comp)
        if best is not None:
            return k, best[1]
    return None


def _areas_centroids(lab: np.ndarray, n: int):
    counts = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    ys, xs = np.indices(lab.shape)
    cy = np.bincount(lab.ravel(), weights=ys.ravel(), minlength=n + 1)[1:] / np.maximum(counts, 1)
    cx = np.bincount(lab.ravel(), weights=xs.ravel(), minlength=n + 1)[1:] / np.maximum(counts, 1)
    return list(zip(counts, zip(cy, cx)))


def _track_airways(air: np.ndarray, lumen: np.ndarray, body: np.ndarray, wsp: Sequence[float]) -> np.ndarray:
    """Trachea and main bronchi, tracked slice by slice from the top, with leak control.

    A section of the tracked airway is followed into the next slice down through the air
    components it overlaps. A component larger than ``AIRWAY_MAX_AREA_MM2`` or more than 2.5
    times (plus a quarter trachea) its parent has merged with lung; then only the pieces of the
    stricter ``lumen`` mask inside it are followed, under the same limits, and where none
    fits, that branch ends (at the hilum). A start that yields less than 30 mm of airway (a
    larynx fold, the oesophagus) is dropped and the search goes on below it.
    """
    max_area = AIRWAY_MAX_AREA_MM2 / (wsp[1] * wsp[2])
    slack = TRACHEA_AREA_MM2[1] / 4 / (wsp[1] * wsp[2])
    below = air.shape[0]
    for _attempt in range(8):
        start = _find_trachea_start(air, body, wsp, below=below)
        if start is None:
            break
        k, current = start
        airways = np.zeros(air.shape, dtype=bool)
        airways[k] = current
        top = k
        while k > 0 and current.any():
            k -= 1
            limit = min(max_area, 2.5 * float(current.sum()) + slack)
            reach = ndimage.binary_dilation(current)
            nxt = _sections_within(air[k], reach, limit)
            merged = air[k] & ~nxt & ndimage.binary_dilation(reach, iterations=1)
            if merged.any():
                lab, _ = _components_2d(air[k])
                big = np.isin(lab, np.unique(lab[reach & merged & (lab > 0)]))
                nxt |= _sections_within(lumen[k] & big, reach, limit)
            airways[k] = nxt
            current = nxt
        if (top - k) * wsp[0] >= 30.0:
            return airways
        below = top
    return np.zeros(air.shape, dtype=bool)


def _sections_within(mask2d: np.ndarray, reach: np.ndarray, limit: float) -> np.ndarray:
    """Components of ``mask2d`` that overlap ``reach`` and have at most ``limit`` pixels."""
    lab, n = _components_2d(mask2d)
    if n == 0:
        return np.zeros_like(mask2d)
    touching = np.unique(lab[reach & (lab > 0)])
    counts = np.bincount(lab.ravel(), minlength=n + 1)
    return np.isin(lab, [i for i in touching if counts[i] <= limit])


def _pick_lungs(cand: np.ndarray, sm: np.ndarray, body: np.ndarray, voxel_ml: float, wsp: Sequence[float], *,
                min_component_ml: float, min_lung_ml: float, min_lung_fraction: float,
                gas_hu: float) -> tuple[np.ndarray, np.ndarray]:
    """Label map (1 right, 2 left) of the two lungs, and a mask of other lung-like air pieces.

    Lung-like: at least ``min_component_ml`` and a mean HU of at least ``gas_hu``. The other
    pieces may be parts of a lung cut off by consolidation; :func:`_attach_fragments` decides.
    """
    lab, n = cc3d.connected_components(cand, connectivity=6, return_N=True)
    counts = component_sizes(lab, cand, n)
    sums = np.bincount(lab[cand], weights=sm[cand], minlength=n + 1)
    mean_hu = sums / np.maximum(counts, 1)
    ok = [i for i in range(1, n + 1) if counts[i] * voxel_ml >= min_component_ml and mean_hu[i] >= gas_hu]
    ok.sort(key=lambda i: -counts[i])
    main = ok[:1] + [i for i in ok[1:2] if counts[i] >= 0.1 * counts[ok[0]]]
    total_ml = float(sum(counts[i] for i in main)) * voxel_ml
    body_ml = float(body.sum()) * voxel_ml
    # A thin slab through the chest holds less than min_lung_ml but is mostly lung.
    if not main or (total_ml < min_lung_ml and total_ml < min_lung_fraction * body_ml):
        raise InputError(
            f"No lungs found in this series: is it a chest CT? The air-filled regions inside the body "
            f"add up to {total_ml:.0f} mL, {100 * total_ml / max(body_ml, 1e-9):.1f} % of the body "
            f"(lungs need at least {min_lung_ml:.0f} mL or {100 * min_lung_fraction:.0f} %)",
            todo="check that the series is a chest CT covering the lungs (not head, neck or abdomen only)",
        )
    keep = np.zeros(n + 1, dtype=np.uint8)
    keep[main] = 1
    keep[[i for i in ok if i not in main]] = 2
    kind = keep[lab]
    out = np.zeros(cand.shape, dtype=np.uint8)
    body_cx = _mean_x(body)
    if len(main) == 2:
        a, b = lab == main[0], lab == main[1]
    else:
        a, b = _split_joined(kind == 1, wsp, body_cx)
    if b.any():
        right, left = (a, b) if _mean_x(a) <= _mean_x(b) else (b, a)
    else:  # one lung only (the other collapsed, removed or out of the field of view)
        right, left = (a, b) if _mean_x(a) < body_cx else (b, a)
    out[right] = RIGHT_LUNG
    out[left] = LEFT_LUNG
    return out, kind == 2


def _attach_fragments(labels: np.ndarray, fragments: np.ndarray) -> np.ndarray:
    """Add the air pieces that touch a lung once its dense lesions are in (cut-off lung parts).

    Bowel and stomach gas stay out: the diaphragm separates them from the lung.
    """
    if not fragments.any():
        return labels
    out = labels.copy()
    lab, _n = cc3d.connected_components(fragments, connectivity=6, return_N=True)
    for side in (RIGHT_LUNG, LEFT_LUNG):
        touching = ndimage.binary_dilation(labels == side, structure=ndimage.generate_binary_structure(3, 1))
        ids = np.unique(lab[touching & (lab > 0)])
        if ids.size:
            out[np.isin(lab, ids) & (out == 0)] = side
    return out


def _mean_x(mask: np.ndarray) -> float:
    if not mask.any():
        return float("nan")
    return float((mask.sum(axis=(0, 1)) * np.arange(mask.shape[2])).sum() / mask.sum())


def _split_joined(comp: np.ndarray, wsp: Sequence[float], body_cx: float) -> tuple[np.ndarray, np.ndarray]:
    """Split one air component into two lungs, or return it with an empty partner.

    The component is one lung when less than 15 % of it lies across the body midline. Otherwise
    the lungs touch (anterior/posterior junction, or airways left in): erode in-plane until two
    large parts separate, then give every voxel to the nearest part; failing that, cut at the
    midline.
    """
    xs = np.arange(comp.shape[2])
    per_x = comp.sum(axis=(0, 1))
    n = per_x.sum()
    right_frac = per_x[xs < body_cx].sum() / n
    if min(right_frac, 1 - right_frac) < 0.15:
        return comp, np.zeros_like(comp)
    box = bbox(comp, margin=(1, 1, 1))
    # Seeds and nearest-seed assignment on a 2x coarser in-plane grid: only the junction
    # voxels can come out differently, and it is 4x cheaper.
    sub = comp[box][:, ::2, ::2]
    csp = (wsp[0], 2 * wsp[1], 2 * wsp[2])
    eroded = sub
    for _ in range(int(np.ceil(15.0 / csp[1]))):
        eroded = ndimage.binary_erosion(eroded, structure=_PLANE)
        lab, k = cc3d.connected_components(eroded, connectivity=6, return_N=True)
        if k < 2:
            continue
        counts = np.bincount(lab.ravel())[1:]
        order = np.argsort(counts)[::-1]
        if counts[order[1]] >= 0.2 * counts[order[0]]:
            seeds = np.where(lab == order[0] + 1, 1, np.where(lab == order[1] + 1, 2, 0)).astype(np.uint8)
            _, idx = ndimage.distance_transform_edt(seeds == 0, sampling=csp, return_indices=True)
            nearest = block_expand(seeds[tuple(idx)], (1, 2, 2), comp[box].shape)
            a, b = np.zeros_like(comp), np.zeros_like(comp)
            a[box] = comp[box] & (nearest == 1)
            b[box] = comp[box] & (nearest == 2)
            return a, b
    a = comp & (xs[None, None, :] < body_cx)
    return a, comp & ~a


def _close_dense_lesions(labels: np.ndarray, sm: np.ndarray, body: np.ndarray, wsp: Sequence[float], *,
                         max_hull_hu: float, wall_mm: float) -> np.ndarray:
    """Add to each lung the chest-wall concavities of its per-slice convex hull (dense lesions).

    A concavity (2D component of hull minus lung) is kept when

    * its hull chord faces outwards: the chord lies farther from the body centre (in units of the
      body's half-axes) than the lung section does. The heart, aorta, hila and the liver or spleen
      dome under a lung base lie on the inner side of the lung and fail this;
    * the chord runs along the chest wall: mean distance to the body surface or to bone at most
      ``wall_mm``.

    The chord cuts off the cap of lesion between it and the curved pleura, so an accepted
    concavity grows across its chord by the depth of that cap on a circle of the hull's area
    (:func:`_cap_depth_mm`).
    """
    from skimage.morphology import convex_hull_image

    out = labels.copy()
    pix_mm2 = wsp[1] * wsp[2]
    min_px = max(4, int(20.0 / pix_mm2))
    for k in np.flatnonzero(labels.any(axis=(1, 2))):
        ys_b, xs_b = np.nonzero(body[k])
        if ys_b.size == 0:
            continue
        cy, cx = (ys_b.min() + ys_b.max()) / 2, (xs_b.min() + xs_b.max()) / 2
        ry, rx = max((ys_b.max() - ys_b.min()) / 2, 1.0), max((xs_b.max() - xs_b.min()) / 2, 1.0)
        allowed = body[k] & (sm[k] < max_hull_hu) & (out[k] == 0)
        wall_dist = None
        for lab in (RIGHT_LUNG, LEFT_LUNG):
            m = out[k] == lab
            if m.sum() < min_px:
                continue
            box = bbox(m, margin=(1, 1))
            oy, ox = box[0].start, box[1].start
            hull = convex_hull_image(m[box])
            add = hull & ~m[box] & allowed[box]
            if add.sum() < min_px:
                continue
            comps, n = _components_2d(add)
            outside = ~hull
            chord = add & ndimage.binary_dilation(outside) if outside.any() else np.zeros_like(add)
            flat = comps.ravel()
            area = np.bincount(flat, minlength=n + 1)
            c_n = np.bincount(flat, weights=chord.ravel(), minlength=n + 1)
            yy, xx = np.indices(add.shape)
            c_y = np.bincount(flat, weights=(chord * (yy + oy)).ravel(), minlength=n + 1) / np.maximum(c_n, 1)
            c_x = np.bincount(flat, weights=(chord * (xx + ox)).ravel(), minlength=n + 1) / np.maximum(c_n, 1)
            my, mx = (float(v.mean()) for v in np.nonzero(m))
            rho_lung = ((my - cy) / ry) ** 2 + ((mx - cx) / rx) ** 2
            rho_chord = ((c_y - cy) / ry) ** 2 + ((c_x - cx) / rx) ** 2
            # Concavities one pixel thin are the staircase of a digitised convex outline.
            thick = np.bincount(flat, weights=ndimage.binary_erosion(add).ravel(), minlength=n + 1) > 0
            cands = [i for i in range(1, n + 1)
                     if area[i] >= min_px and thick[i] and c_n[i] > 0 and rho_chord[i] > rho_lung]
            if not cands:
                continue
            if wall_dist is None:
                # On a 2x coarser grid: only compared with wall_mm (tens of mm).
                wall = ~body[k] | (sm[k] > BONE_HU)
                coarse = ndimage.distance_transform_edt(~wall[::2, ::2], sampling=(2 * wsp[1], 2 * wsp[2]))
                wall_dist = block_expand(coarse[None], (1, 2, 2), (1,) + wall.shape)[0]
            wd = np.bincount(flat, weights=(chord * wall_dist[box]).ravel(), minlength=n + 1) / np.maximum(c_n, 1)
            for i in cands:
                if wd[i] > wall_mm:
                    continue
                comp = comps == i
                grow = round(_cap_depth_mm(comp & chord, float(hull.sum()), wsp) / wsp[2])
                if grow > 0:
                    comp |= ndimage.binary_dilation(comp, iterations=grow) & outside & allowed[box]
                out[k][box][comp] = lab
            allowed &= out[k] == 0
    return out


def _cap_depth_mm(chord: np.ndarray, hull_px: float, wsp: Sequence[float]) -> float:
    """Depth (mm) of the circular cap cut off by a chord, on a circle of the hull's area.

    The sagitta ``R - sqrt(R^2 - c^2 / 4)`` of chord length ``c`` (the chord pixels' extent) on
    the equivalent circle ``R = sqrt(area / pi)``, at most 8 mm.
    """
    ys, xs = np.nonzero(chord)
    c = float(np.hypot(np.ptp(ys) * wsp[1], np.ptp(xs) * wsp[2]))
    r = float(np.sqrt(hull_px * wsp[1] * wsp[2] / np.pi))
    return min(r - np.sqrt(max(r * r - c * c / 4.0, 0.0)), 8.0)


def _grow_into_opacities(labels: np.ndarray, allowed: np.ndarray, wsp: Sequence[float], *,
                         grow_mm: float) -> np.ndarray:
    """Grow each lung in-plane, through ``allowed`` voxels only, by up to ``grow_mm``, then peel
    one voxel off the grown part's outer border."""
    out = labels.copy()
    steps = max(1, round(grow_mm / wsp[1]))
    free = allowed & (labels == 0)
    for lab in (RIGHT_LUNG, LEFT_LUNG):
        m = labels == lab
        box = bbox(m, margin=(0, steps, steps))
        if box is None:
            continue
        grown = ndimage.binary_dilation(m[box], structure=_PLANE, iterations=steps, mask=free[box] | m[box])
        # The outermost grown voxel is the partial-volume rim of the pleura (half air, half
        # tissue, about -400 HU), not opacity: peel it off.
        grown &= ~ndimage.binary_dilation(~grown, structure=_PLANE) | m[box]
        new = grown & free[box]
        out[box][new] = lab
        free[box] &= ~new
    return out
