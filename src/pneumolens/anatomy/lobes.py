"""Five lung lobes from the two lung masks (learned shape model), external lobe maps, lung zones.

Three ways to divide the lungs into regions, all returning a label map on the scan's canonical
grid in which every lung voxel belongs to exactly one region and nothing outside the lungs does:

* :func:`predict_lobes` - the shipped lobe model (``lobes_unet3d``): a small 3D U-Net that maps
  the right and left lung masks, resampled to a 5 mm grid, to the five lobes. It was trained on
  250 real lobe label maps (TotalSegmentator data set, Wasserthal et al., Radiol Artif Intell
  2023, doi 10.1148/ryai.230024) with the lungs taken as the union of the lobes, so it learns how
  lobes divide lungs of many shapes (a learned statistical shape prior; compare van Rikxoort et al.,
  "Automatic segmentation of pulmonary lobes robust against incomplete fissures", IEEE TMI
  29(6), 2010, doi 10.1109/TMI.2010.2044799, who fall back on lung shape where fissures are not seen). It does not look at the image:
  fissures are not detected, so the boundaries are the population's most likely ones for this
  lung shape. Per-lobe confidence = the model's mean probability of the assigned lobe over the
  lobe's voxels (an estimate of the share of its voxels that are right; checked on held-out maps
  in ``docs/models/lobes_unet3d.md``).
* :func:`external_lobes` - a label map made elsewhere (``--lobes FILE``): TotalSegmentator
  (``total`` task v2 or v1 label values), lungmask ``LTRCLobes``, or pneumolens' own order; checked
  against the scan's geometry and lungs.
* :func:`lung_zones` - upper, middle and lower thirds of each lung by volume (``--regions zones``).

Label order of lobe maps here (and in ``lobes.nii.gz``): 1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pneumolens.analysis import LOBE_NAMES, Regions
from pneumolens.anatomy.lobe_grid import GRID_MM, GRID_SHAPE, grid_index_of, lung_input
from pneumolens.errors import InputError, ModelError
from pneumolens.grid import block_expand, reduction_factors
from pneumolens.masks import LEFT_LUNG, RIGHT_LUNG

LOBE_MODEL = "lobes_unet3d"
RIGHT_LOBES = (1, 2, 3)
LEFT_LOBES = (4, 5)
ZONE_NAMES: dict[int, str] = {
    1: "right_upper", 2: "right_middle", 3: "right_lower", 4: "left_upper", 5: "left_middle", 6: "left_lower",
}
#: Below this per-lobe confidence the analysis warns (chosen on the validation maps, see the model card).
LOW_CONFIDENCE = 0.85
#: Lobe labels are computed on blocks of about this size (mm) and expanded to the full grid.
LABEL_BLOCK_MM = (2.5, 2.5, 2.5)

#: Label values of external lobe maps -> pneumolens lobe label, per convention.
#: TotalSegmentator ``total`` task v2 (>= 2.0): 10 lung_upper_lobe_left, 11 lung_lower_lobe_left,
#: 12 lung_upper_lobe_right, 13 lung_middle_lobe_right, 14 lung_lower_lobe_right; v1: 13..17 in the
#: same order. lungmask LTRCLobes / R231CovidWeb-lobes (Hofmanninger et al. 2020): 1 LUL, 2 LLL,
#: 3 RUL, 4 RML, 5 RLL.
CONVENTIONS: dict[str, dict[int, int]] = {
    "pneumolens": {1: 1, 2: 2, 3: 3, 4: 4, 5: 5},
    "lungmask": {1: 4, 2: 5, 3: 1, 4: 2, 5: 3},
    "totalsegmentator": {10: 4, 11: 5, 12: 1, 13: 2, 14: 3},
    "totalsegmentator_v1": {13: 4, 14: 5, 15: 1, 16: 2, 17: 3},
}


#: What the region functions return: the regions and warnings for the analysis (low confidence,
#: a repaired external map).
RegionsResult = tuple[Regions, tuple[str, ...]]


# ----------------------------------------------------------------------------- lobe model
def lobe_probabilities(right: np.ndarray, left: np.ndarray, spacing: Sequence[float], model) -> tuple[np.ndarray, np.ndarray]:
    """Run the lobe network: ``(5, *GRID_SHAPE)`` probabilities (softmax within each lung) and the grid centre."""
    x, centre = lung_input(right, left, spacing)
    logits = model.run(x[None])[0].astype(np.float32)
    return side_softmax(logits), centre


def side_softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the right-lung lobes (channels 0-2) and, separately, the left-lung lobes (3-4)."""
    out = np.empty_like(logits)
    for sl in (slice(0, 3), slice(3, 5)):
        z = logits[sl] - logits[sl].max(axis=0, keepdims=True)
        e = np.exp(z)
        out[sl] = e / e.sum(axis=0, keepdims=True)
    return out


def _interp_axis(a: np.ndarray, axis: int, coords: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``a`` along ``axis`` at fractional indices ``coords`` (clamped to the edges)."""
    n = a.shape[axis]
    c = np.clip(coords.astype(np.float32), 0.0, n - 1.0)
    i0 = np.minimum(np.floor(c).astype(np.intp), max(n - 2, 0))
    w = c - i0
    shape = [1] * a.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    lo = np.take(a, i0, axis=axis)
    hi = np.take(a, np.minimum(i0 + 1, n - 1), axis=axis)
    return lo + (hi - lo) * w


def _probabilities_on_blocks(prob: np.ndarray, centres_mm: list[np.ndarray], centre_mm: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of grid probabilities ``(C, *grid)`` at an axis-aligned block lattice.

    ``centres_mm[a]`` are the block centres along axis ``a`` (mm from voxel 0). Separable: three
    1D interpolations, far cheaper than interpolating every point in 3D.
    """
    out = prob
    for axis in range(3):
        pos = np.zeros((3, centres_mm[axis].size), dtype=np.float32)
        pos[axis] = centres_mm[axis]
        idx = grid_index_of(pos, np.where(np.arange(3) == axis, centre_mm, 0.0))[axis]
        out = _interp_axis(out, axis + 1, idx)
    return out


def smooth_probabilities(prob: np.ndarray, sigma_mm: float) -> np.ndarray:
    """Gaussian smoothing (``sigma_mm``, isotropic) of grid probabilities ``(C, *grid)``, channel by channel.

    Each lung's lobe probabilities still sum to one (a linear filter of a partition of unity).
    """
    from scipy import ndimage

    if sigma_mm <= 0:
        return prob
    sigma = sigma_mm / GRID_MM
    return np.stack([ndimage.gaussian_filter(c, sigma, mode="nearest") for c in prob]).astype(prob.dtype)


def block_labels(
    p: np.ndarray, right_blocks: np.ndarray, left_blocks: np.ndarray, *, cleanup: str = "none",
) -> tuple[np.ndarray, np.ndarray]:
    """Most probable right lobe (1-3) and left lobe (4-5) of each label block, optionally cleaned up.

    Parameters
    ----------
    p
        ``(5, *blocks)`` lobe probabilities at the block centres.
    right_blocks, left_blocks
        Blocks holding at least one voxel of the right / left lung.
    cleanup
        ``"none"``, or the connectivity of :func:`keep_largest_components` (``"6"`` faces,
        ``"26"`` faces, edges and corners).
    """
    right_lab = (np.argmax(p[0:3], axis=0) + 1).astype(np.uint8)
    left_lab = (np.argmax(p[3:5], axis=0) + 4).astype(np.uint8)
    if cleanup != "none":
        right_lab = keep_largest_components(right_lab, right_blocks, p, RIGHT_LOBES, connectivity=int(cleanup))
        left_lab = keep_largest_components(left_lab, left_blocks, p, LEFT_LOBES, connectivity=int(cleanup))
    return right_lab, left_lab


def keep_largest_components(
    labels: np.ndarray, lung: np.ndarray, p: np.ndarray, lobes: Sequence[int], *, connectivity: int = 6,
) -> np.ndarray:
    """Each lobe of one lung as its largest connected component; the other pieces join a touching lobe.

    A piece of lobe ``a`` (within ``lung``) that is not ``a``'s largest component is relabelled to
    the lobe, among those touching it, of highest mean probability over the piece; a piece that
    touches no other lobe (an isolated bit of lung) keeps its label. The usual clean-up of lobe
    segmentations, where a lobe is one connected region (e.g. Xie et al., "Relational modeling
    for robust and efficient pulmonary lobe segmentation in CT scans", IEEE TMI 39(8), 2020,
    doi 10.1109/TMI.2020.2995108; Hofmanninger et al., Eur Radiol Exp 4:50, 2020,
    doi 10.1186/s41747-020-00173-2, keep the largest component per label).

    Parameters
    ----------
    labels
        Lobe label of every block (only blocks in ``lung`` matter); not modified.
    lung
        Blocks of this lung.
    p
        ``(5, *blocks)`` probabilities of lobes 1-5 (channel = label - 1).
    lobes
        Labels of this lung's lobes.
    connectivity
        6 (faces) or 26 (faces, edges, corners).

    Returns
    -------
    numpy.ndarray
        The cleaned labels (same dtype and shape).
    """
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    out = labels.copy()
    for lobe in lobes:
        comp, n = ndimage.label((out == lobe) & lung, structure)
        if n <= 1:
            continue
        sizes = np.bincount(comp.ravel())[1:]
        keep = int(np.argmax(sizes)) + 1
        for index, box in enumerate(ndimage.find_objects(comp), start=1):
            if index == keep or box is None:
                continue
            box = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in box)
            piece = comp[box] == index
            ring = ndimage.binary_dilation(piece, structure) & ~piece & lung[box]
            touching = [k for k in np.unique(out[box][ring]).tolist() if k in lobes and k != lobe]
            if not touching:
                continue
            best = max(touching, key=lambda k: float(p[k - 1][box][piece].mean()))
            out[box][piece] = best
    return out


def labels_from_probabilities(
    prob: np.ndarray, centre_mm: np.ndarray, lung_labels: np.ndarray, spacing: Sequence[float], *,
    cleanup: str = "none",
) -> tuple[np.ndarray, dict[str, float]]:
    """Lobe label map on the lung grid from grid probabilities, and per-lobe confidence.

    Probabilities are interpolated (trilinear) at the centres of blocks of about
    :data:`LABEL_BLOCK_MM` over the lungs' bounding box, the most probable lobe of the voxel's
    own lung is taken (so a right-lung voxel is never a left lobe), optionally cleaned up
    (:func:`block_labels`), and blocks are expanded back to the full grid.
    """
    factors = reduction_factors(spacing, LABEL_BLOCK_MM)
    box = _bbox(lung_labels > 0)
    sub = lung_labels[box]
    shape = tuple(-(-n // f) for n, f in zip(sub.shape, factors))
    # Lung voxels per block (weights of the confidence).
    padded = np.zeros(tuple(n * f for n, f in zip(shape, factors)), dtype=np.uint8)
    padded[: sub.shape[0], : sub.shape[1], : sub.shape[2]] = sub
    blocks = padded.reshape(shape[0], factors[0], shape[1], factors[1], shape[2], factors[2])
    per_block = (blocks > 0).sum(axis=(1, 3, 5), dtype=np.int32)
    centres = [(b.start + np.arange(n) * f + (f - 1) / 2.0) * s
               for b, n, f, s in zip(box, shape, factors, spacing)]
    p = _probabilities_on_blocks(prob, centres, np.asarray(centre_mm, dtype=np.float32))
    if cleanup == "none":
        right_lab, left_lab = block_labels(p, per_block > 0, per_block > 0)
    else:  # the clean-up needs the blocks of each lung
        right_blocks, left_blocks = ((blocks == side).any(axis=(1, 3, 5)) for side in (RIGHT_LUNG, LEFT_LUNG))
        right_lab, left_lab = block_labels(p, right_blocks, left_blocks, cleanup=cleanup)
    full_r = block_expand(right_lab, factors, sub.shape)
    full_l = block_expand(left_lab, factors, sub.shape)
    labels = np.zeros(lung_labels.shape, dtype=np.uint8)
    labels[box] = np.where(sub == RIGHT_LUNG, full_r, np.where(sub == LEFT_LUNG, full_l, 0))
    # Confidence: mean probability of the assigned lobe over the lobe, weighted by lung voxels per block.
    confidence = {}
    for lab, name in LOBE_NAMES.items():
        right = lab in RIGHT_LOBES
        side_lab = right_lab if right else left_lab
        channels = slice(0, 3) if right else slice(3, 5)
        w = np.where(side_lab == lab, per_block, 0).astype(np.float64)
        own = np.take_along_axis(p[channels], (side_lab - channels.start - 1)[None].astype(np.intp), axis=0)[0]
        confidence[name] = float((own * w).sum() / w.sum()) if w.sum() > 0 else float("nan")
    return labels, confidence


def _bbox(mask: np.ndarray) -> tuple[slice, slice, slice]:
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    if any(i.size == 0 for i in idx):
        return (slice(0, 0),) * 3
    return tuple(slice(int(i[0]), int(i[-1]) + 1) for i in idx)  # type: ignore[return-value]


def predict_lobes(
    lung_labels: np.ndarray, spacing: Sequence[float], *, weights: str | Path = LOBE_MODEL, threads: int = 0,
    low_confidence: float = LOW_CONFIDENCE,
) -> RegionsResult:
    """Five lobes of the lungs ``lung_labels`` (1 right, 2 left) with the shipped lobe model.

    Parameters
    ----------
    lung_labels
        uint8 ``[z, y, x]`` lung labels (:attr:`pneumolens.masks.LungMasks.labels`).
    spacing
        Voxel size ``(z, y, x)`` in mm.
    weights
        Shipped model name or ONNX path (sidecar beside it).
    threads
        onnxruntime threads (0 = its default).
    low_confidence
        A lobe whose confidence is below this gets a warning.

    Returns
    -------
    regions, warnings
        ``kind="lobes"``, every lung voxel labelled 1-5 (right-lung voxels only 1-3), per-lobe
        confidence; a warning per lobe whose confidence is below ``low_confidence``.

    Raises
    ------
    InputError
        When a lung is missing (the model needs both lungs to place the lobes).
    """
    from pneumolens import models

    right, left = lung_labels == RIGHT_LUNG, lung_labels == LEFT_LUNG
    if not right.any() or not left.any():
        missing = "right" if not right.any() else "left"
        raise InputError(
            f"the {missing} lung is missing from the lung mask, so lobes cannot be placed",
            todo="use --regions zones, or give a lobe map made elsewhere with --lobes FILE",
        )
    model = models.load(weights, threads=threads, kind="lung_mask_grid")
    spec = model.meta["input"]
    if tuple(spec.get("size", ())) != GRID_SHAPE or float(spec.get("grid_mm", 0.0)) != GRID_MM:
        raise ModelError(
            f"lobe model {model.path} expects a grid of {spec.get('size')} voxels of {spec.get('grid_mm')} mm; "
            f"this pneumolens makes {list(GRID_SHAPE)} of {GRID_MM} mm. Re-export the model for this version."
        )
    prob, centre = lobe_probabilities(right, left, spacing, model)
    labels, confidence = labels_from_probabilities(prob, centre, lung_labels, spacing)
    warnings = tuple(
        f"lobe {name}: low confidence {value:.2f} (< {low_confidence:.2f}); its boundaries come from lung shape "
        "alone and may be off by more than a centimetre; check the lobe images or give --lobes FILE"
        for name, value in confidence.items()
        if not value >= low_confidence
    )
    warnings = warnings + _grid_warnings(lung_labels, spacing)
    return Regions(labels, dict(LOBE_NAMES), "lobes", f"model:{model.name}", confidence), warnings


def _grid_warnings(lung_labels: np.ndarray, spacing: Sequence[float]) -> tuple[str, ...]:
    """A warning when the lungs reach beyond the lobe grid (320 x 280 x 400 mm): the part outside
    is labelled from the grid's edge."""
    box = _bbox(lung_labels > 0)
    extent = np.array([(b.stop - b.start) * s for b, s in zip(box, spacing)])
    limit = np.array(GRID_SHAPE) * GRID_MM
    if np.any(extent > limit):
        message = (f"the lungs span {extent.round(0).tolist()} mm (z, y, x), beyond the lobe model's "
                   f"{limit.tolist()} mm field; lobes near the lungs' edges there are less reliable")
        return (message,)
    return ()


# ----------------------------------------------------------------------------- label maps on disk
def read_label_map(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an integer label map (NIfTI, NRRD, MHA) as a canonical ``[z, y, x]`` array and its affine.

    The affine maps canonical indices to LPS mm, as :attr:`pneumolens.io.CTScan.affine` does.

    Raises
    ------
    InputError
        When the file cannot be read, is not 3D or is not integer-valued.
    """
    import SimpleITK as sitk

    from pneumolens.io.orientation import (
        affine_from_axes,
        canonical_reorientation,
        reoriented_affine,
    )

    path = Path(path)
    if not path.is_file():
        raise InputError("the lobe map file does not exist", where=path, todo="give the path of a NIfTI/NRRD/MHA label map")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(
            f"the lobe map could not be read ({str(exc).strip().splitlines()[-1][:200]})",
            where=path, todo="give a NIfTI (.nii/.nii.gz), NRRD or MHA label map",
        ) from None
    size = image.GetSize()
    while len(size) > 3 and size[-1] == 1:
        image = image[(slice(None),) * 3 + (0,) * (len(size) - 3)]
        size = image.GetSize()
    if len(size) != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"the lobe map is not a 3D single-channel label map (size {size})", where=path,
            todo="give one 3D label map with one integer label per lobe",
        )
    array = sitk.GetArrayFromImage(image)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise InputError("the lobe map holds non-integer values: not a label map", where=path,
                             todo="give the label map, not a probability map or a CT")
        array = array.astype(np.int32)
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    sp = image.GetSpacing()
    source_affine = affine_from_axes(
        np.asarray(image.GetOrigin(), dtype=float),
        np.stack([direction[:, 2], direction[:, 1], direction[:, 0]]),
        (sp[2], sp[1], sp[0]),
    )
    reorientation = canonical_reorientation(source_affine)
    return np.ascontiguousarray(reorientation.apply(array)), reoriented_affine(source_affine, reorientation, array.shape)


# ----------------------------------------------------------------------------- external lobe maps
#: Share of the lung voxels an external map must label (the rest is filled from the nearest lobe).
MIN_LUNG_COVERAGE = 0.80
#: Share of each lobe's voxels (inside the lungs) that must lie in the lung it belongs to.
MIN_SIDE_AGREEMENT = 0.90
#: Largest tolerated difference between the map's and the scan's affine (mm).
AFFINE_TOLERANCE_MM = 0.5


def external_lobes(
    path: str | Path, lung_labels: np.ndarray, affine: np.ndarray, *, convention: str = "auto",
) -> RegionsResult:
    """Lobes from a label map made elsewhere, checked against the scan's geometry and lungs.

    Parameters
    ----------
    path
        NIfTI/NRRD/MHA label map on the scan's voxel grid (same shape and patient position;
        any axis order or flips: it is reoriented like the scan).
    lung_labels
        The analysis' lung labels (1 right, 2 left) on the canonical grid.
    affine
        The scan's canonical affine (:attr:`pneumolens.io.CTScan.affine`).
    convention
        ``"pneumolens"`` (1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL), ``"lungmask"`` (LTRCLobes: 1 LUL,
        2 LLL, 3 RUL, 4 RML, 5 RLL), ``"totalsegmentator"`` (v2 ``total``: 10 LUL, 11 LLL,
        12 RUL, 13 RML, 14 RLL; other labels, e.g. other organs, ignored),
        ``"totalsegmentator_v1"`` (13-17) or ``"auto"``: the convention whose lobes fall in the
        right lungs (labels 1-5 are tried as pneumolens then lungmask).

    Returns
    -------
    regions, warnings
        Lung voxels the map leaves unlabelled take the nearest lobe of the same lung; map
        voxels outside the lungs are dropped (with a warning when more than 5 % of the lung).
        Confidence is not estimated for a given map (empty).

    Raises
    ------
    InputError
        Wrong geometry (shape or position), missing lobes, or lobes that do not match the lungs
        (a right lobe in the left lung, or less than 80 % of the lungs covered).
    """
    path = Path(path)
    raw, map_affine = read_label_map(path)
    if raw.shape != lung_labels.shape:
        raise InputError(
            f"the lobe map's grid {raw.shape[::-1]} (x, y, z) differs from the scan's {lung_labels.shape[::-1]}",
            where=path, todo="give a lobe map computed on this very series (same voxel grid)",
        )
    corners = np.array([[i, j, k, 1.0] for i in (0, raw.shape[0] - 1) for j in (0, raw.shape[1] - 1)
                        for k in (0, raw.shape[2] - 1)]).T
    offset = float(np.abs((map_affine @ corners)[:3] - (affine @ corners)[:3]).max())
    if offset > AFFINE_TOLERANCE_MM:
        raise InputError(
            f"the lobe map lies {offset:.1f} mm away from the scan in patient space (different origin, "
            "spacing or orientation)",
            where=path, todo="give a lobe map computed on this very series, saved with its geometry",
        )
    names = list(CONVENTIONS) if convention == "auto" else [convention]
    if convention != "auto" and convention not in CONVENTIONS:
        raise InputError(f"unknown lobe label convention {convention!r}", where=path,
                         todo=f"use one of {', '.join(CONVENTIONS)} or auto")
    present = set(np.unique(raw).tolist()) - {0}
    problems = []
    for name in names:
        table = CONVENTIONS[name]
        if not set(table) <= present:
            problems.append(f"{name}: labels {sorted(set(table) - present)} absent")
            continue
        mapped = np.zeros(raw.shape, dtype=np.uint8)
        for value, lobe in table.items():
            mapped[raw == value] = lobe
        failure = _side_mismatch(mapped, lung_labels)
        if failure is None:
            return _complete_external(mapped, lung_labels, name, path)
        problems.append(f"{name}: {failure}")
    raise InputError(
        "the lobe map does not match this scan's lungs (" + "; ".join(problems) + ")",
        where=path,
        todo="check the map belongs to this series and pass its label convention with --lobes-convention "
        "(pneumolens, lungmask, totalsegmentator, totalsegmentator_v1)",
    )


def _side_mismatch(mapped: np.ndarray, lung_labels: np.ndarray) -> str | None:
    """Why ``mapped`` (pneumolens lobe labels) does not fit the lungs, or ``None`` when it does."""
    lungs = lung_labels > 0
    coverage = float(np.count_nonzero(mapped[lungs])) / max(int(lungs.sum()), 1)
    if coverage < MIN_LUNG_COVERAGE:
        return f"its lobes cover {100 * coverage:.0f} % of the lungs (need {100 * MIN_LUNG_COVERAGE:.0f} %)"
    for lab, name in LOBE_NAMES.items():
        own = RIGHT_LUNG if lab in RIGHT_LOBES else LEFT_LUNG
        inside = lung_labels[(mapped == lab) & lungs]
        if inside.size == 0:
            return f"lobe {name} has no voxel in the lungs"
        share = float(np.count_nonzero(inside == own)) / inside.size
        if share < MIN_SIDE_AGREEMENT:
            side = "right" if own == RIGHT_LUNG else "left"
            return f"only {100 * share:.0f} % of {name} lies in the {side} lung"
    return None


def _complete_external(mapped: np.ndarray, lung_labels: np.ndarray, convention: str, path: Path) -> RegionsResult:
    """Restrict an accepted map to the lungs and give unlabelled lung voxels the nearest lobe of their lung."""
    from scipy import ndimage

    labels = np.zeros(lung_labels.shape, dtype=np.uint8)
    warnings = []
    outside = float(np.count_nonzero(mapped[lung_labels == 0])) / max(int(np.count_nonzero(lung_labels)), 1)
    if outside > 0.05:
        warnings.append(f"the lobe map labels {100 * outside:.0f} % of the lung volume outside this analysis' lungs; "
                        "those voxels were ignored")
    filled = 0
    for side, lobes in ((RIGHT_LUNG, RIGHT_LOBES), (LEFT_LUNG, LEFT_LOBES)):
        lung = lung_labels == side
        own = np.where(lung & np.isin(mapped, lobes), mapped, 0).astype(np.uint8)
        missing = lung & (own == 0)
        if missing.any():
            box = _bbox(lung)
            sub = own[box]
            _, idx = ndimage.distance_transform_edt(sub == 0, return_indices=True)
            sub_filled = sub[tuple(idx)]
            region = labels[box]
            region[lung[box]] = sub_filled[lung[box]]
            filled += int(missing.sum())
        else:
            labels[lung] = own[lung]
    if filled / max(int(np.count_nonzero(lung_labels)), 1) > 0.02:
        warnings.append(f"the lobe map left {100 * filled / np.count_nonzero(lung_labels):.0f} % of the lungs "
                        "unlabelled; those voxels took the nearest lobe")
    return Regions(labels, dict(LOBE_NAMES), "lobes", f"external:{convention}:{path.name}"), tuple(warnings)


# ----------------------------------------------------------------------------- zones
def lung_zones(lung_labels: np.ndarray) -> Regions:
    """Upper, middle and lower thirds of each lung by volume along z (cranio-caudal).

    Each lung is cut by axial planes at a third and two thirds of its volume counted from the
    apex (a slice straddling a cut is split voxel by voxel in raster order, so the thirds are
    equal to one voxel). Labels 1-3 right upper/middle/lower, 4-6 left; see :data:`ZONE_NAMES`.
    A common alternative to lobes for distribution scores (e.g. Chung et al., Radiology 2020,
    doi 10.1148/radiol.2020200230).
    """
    labels = np.zeros(lung_labels.shape, dtype=np.uint8)
    for side, first in ((RIGHT_LUNG, 1), (LEFT_LUNG, 4)):
        lung = lung_labels == side
        n = int(lung.sum())
        if n == 0:
            continue
        # Rank lung voxels from the apex (highest z) down; z is axis 0, inferior -> superior.
        zz, yy, xx = np.nonzero(lung[::-1])
        rank = np.arange(n)
        zone = np.minimum(rank * 3 // n, 2).astype(np.uint8) + first
        labels[lung.shape[0] - 1 - zz, yy, xx] = zone
    return Regions(labels, dict(ZONE_NAMES), "zones", "zones:volume_thirds")
