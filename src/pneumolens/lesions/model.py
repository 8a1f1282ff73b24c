"""Lesion segmentation with the shipped 2D U-Net (onnxruntime), applied across a 3D volume.

The network sees one axial slice at a time (the 2D training sets are single slices); the 3D
step comes after: probabilities are smoothed along z over neighbouring slices (a Gaussian of
``z_sigma_mm``), thresholded, restricted to the lungs, and connected components smaller than
``min_component_ml`` are removed in 3D. Ground-glass vs consolidation is the larger of the two
class probabilities inside the lesion mask.

No torch: preprocessing is :mod:`pneumolens.models.preprocess`, inference is onnxruntime.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from pneumolens import models
from pneumolens.masks import CONSOLIDATION, GGO, LesionEvidence, LesionMasks, LungMasks
from pneumolens.models import preprocess as pp

DEFAULT_THRESHOLD = 0.5

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SliceResult:
    """2D result of one image: labels (0/1 GGO/2 consolidation) and lesion probability."""

    labels: np.ndarray
    probability: np.ndarray


def _model(weights: str | Path | models.Model | None, threads: int) -> models.Model:
    if isinstance(weights, models.Model):
        return weights
    return models.load(weights or models.LESION_MODEL, threads=threads)


def _run_batches(model: models.Model, inputs: np.ndarray, batch_size: int, *, flip_tta: bool = True) -> np.ndarray:
    """Probabilities ``(N, 3, S, S)`` of prepared inputs ``(N, S, S)``.

    ``flip_tta``: averaged with the prediction on the left-right mirrored slices, mirrored back
    (test-time augmentation; training mirrors slices too). It costs a second network pass and
    measured better on every held-out block, on normal lungs and on P002 (model card, "Flip
    test-time augmentation").
    """
    out = np.empty((inputs.shape[0], 3) + inputs.shape[1:], dtype=np.float32)
    for i in range(0, inputs.shape[0], batch_size):
        batch = inputs[i : i + batch_size, None]
        out[i : i + batch_size] = model.run(batch)
        if flip_tta:
            mirrored = model.run(np.ascontiguousarray(batch[..., ::-1]))[..., ::-1]
            out[i : i + batch_size] = (out[i : i + batch_size] + mirrored) / 2.0
    return out


def _labels_from(p_lesion: np.ndarray, p_ggo: np.ndarray, p_cons: np.ndarray, threshold: float) -> np.ndarray:
    labels = np.zeros(p_lesion.shape, dtype=np.uint8)
    lesion = p_lesion >= threshold
    labels[lesion & (p_ggo >= p_cons)] = GGO
    labels[lesion & (p_cons > p_ggo)] = CONSOLIDATION
    return labels


def predict_lesions_model(
    volume: np.ndarray,
    spacing: Sequence[float],
    lungs: LungMasks | np.ndarray,
    *,
    weights: str | Path | models.Model | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    z_sigma_mm: float = 1.5,
    min_component_ml: float = 0.02,
    batch_size: int = 16,
    threads: int = 0,
    flip_tta: bool = True,
) -> LesionEvidence:
    """Lesion probabilities and classes of the U-Net over the lung box, not yet restricted to the lungs.

    Parameters
    ----------
    volume
        ``(Z, Y, X)`` HU volume (not modified).
    spacing
        Voxel size ``(z, y, x)`` in mm.
    lungs
        :class:`~pneumolens.masks.LungMasks` (or a boolean ``(Z, Y, X)`` lung mask): its
        bounding box is what the network sees.
    weights
        Shipped model name, path of an ONNX file with its sidecar, or a loaded
        :class:`~pneumolens.models.Model`; the shipped ``lesion_unet2d`` when ``None``. The
        sidecar's preprocessing (window, crop margin, CLAHE, size) is applied.
    threshold
        Lesion probability (P(GGO) + P(consolidation)) at or above which a voxel is a lesion.
    z_sigma_mm
        Gaussian smoothing of the probabilities along z, in mm (0 turns it off); below half a
        slice spacing it has almost no effect, so thick slices are not blurred together.
    min_component_ml
        3D lesion components smaller than this volume (mL) are removed (by
        :meth:`LesionEvidence.within`, once the lungs are final).
    batch_size
        Slices per onnxruntime call.
    threads
        onnxruntime threads (0 = its default), used when ``weights`` is not a loaded model.
    flip_tta
        Average with the prediction on left-right mirrored slices (twice the network time).

    Returns
    -------
    LesionEvidence
        ``labels`` 1 GGO / 2 consolidation where the smoothed probability is at or above
        ``threshold``, ``probability`` the smoothed lesion probability (both 0 outside the lung
        box), ``method = "model:<name>"``.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"volume must be 3D (Z, Y, X), got shape {vol.shape}")
    lung = lungs.union if isinstance(lungs, LungMasks) else np.asarray(lungs, dtype=bool)
    if lung.shape != vol.shape:
        raise ValueError(f"lung mask shape {lung.shape} differs from volume shape {vol.shape}")
    model = _model(weights, threads)
    prep = model.preprocessing
    labels = np.zeros(vol.shape, dtype=np.uint8)
    probability = np.zeros(vol.shape, dtype=np.float32)
    zs = np.nonzero(lung.any(axis=(1, 2)))[0]
    if zs.size == 0:
        return LesionEvidence(labels, probability, f"model:{model.name}", min_component_ml)

    size = prep.size
    box = pp.square_box(lung[zs], margin=prep.box_margin)
    z0, z1 = int(zs[0]), int(zs[-1]) + 1
    inputs = np.stack([prep.prepare_slice(pp.window_hu(vol[z], prep.hu_window), box) for z in range(z0, z1)])
    prob = _run_batches(model, inputs, batch_size, flip_tta=flip_tta)  # (Z', 3, S, S)
    sigma = z_sigma_mm / float(spacing[0])
    if sigma > 0:  # in place, and only the lesion classes (the background channel is not used)
        ndimage.gaussian_filter1d(prob[:, GGO:], sigma, axis=0, mode="nearest", truncate=2.0, output=prob[:, GGO:])
    # Back to the image grid, only inside the lung box (everything outside it is 0), written
    # straight into the output volume. Only the lesion probability is interpolated; the
    # GGO/consolidation choice is looked up at the network resolution for lesion voxels
    # (nearest), which is what keeps this fast.
    p_lesion, (ys, xs) = pp.restore_region(prob[:, GGO] + prob[:, CONSOLIDATION], box, vol.shape[1:],
                                           out=probability[z0:z1])
    np.clip(p_lesion, 0.0, 1.0, out=p_lesion)
    kz, ky, kx = np.nonzero(p_lesion >= threshold)
    scale = size / box.side
    iy = np.clip(((ky + ys.start - box.y0 + 0.5) * scale).astype(int), 0, size - 1)
    ix = np.clip(((kx + xs.start - box.x0 + 0.5) * scale).astype(int), 0, size - 1)
    consolidation = prob[kz, CONSOLIDATION, iy, ix] > prob[kz, GGO, iy, ix]
    labels[z0 + kz, ys.start + ky, xs.start + kx] = np.where(consolidation, CONSOLIDATION, GGO)
    return LesionEvidence(labels, probability, f"model:{model.name}", min_component_ml, box=(slice(z0, z1), ys, xs))


def segment_lesions_model(
    volume: np.ndarray,
    spacing: Sequence[float],
    lungs: LungMasks | np.ndarray,
    *,
    restrict_to_lungs: bool = True,
    **options,
) -> LesionMasks:
    """Segment ground-glass and consolidation with the lesion U-Net, inside ``lungs``.

    :func:`predict_lesions_model` (``options`` are its keyword options) followed by
    :meth:`LesionEvidence.within` the given lungs. ``restrict_to_lungs=False`` keeps what the
    network predicts outside them (to measure how much that is; the analysis always
    restricts). Lung completion is a separate anatomy step
    (:func:`pneumolens.anatomy.complete_lungs`) that ``pipeline.analyze`` runs in between.
    """
    evidence = predict_lesions_model(volume, spacing, lungs, **options)
    if restrict_to_lungs:
        mask = lungs if isinstance(lungs, LungMasks) else LungMasks(np.asarray(lungs, np.uint8), np.zeros(evidence.labels.shape, bool))
    else:
        mask = LungMasks(np.ones(evidence.labels.shape, np.uint8), np.zeros(evidence.labels.shape, bool))
    return evidence.within(mask, tuple(float(s) for s in spacing))


def rough_lung_mask_8bit(image01: np.ndarray) -> np.ndarray:
    """Rough lung mask of a lung-window slice in ``[0, 1]``: dark regions enclosed by the body.

    The dark threshold is Otsu's; regions under 0.5 % of the image are dropped. Used only to
    choose the crop box for 2D images (no HU available), never to restrict the lesions.
    """
    from skimage.filters import threshold_otsu

    img = np.asarray(image01, dtype=np.float32)
    if float(img.max() - img.min()) < 1e-6:
        return np.zeros(img.shape, dtype=bool)
    return pp.enclosed_regions(img < threshold_otsu(img), min_pixels=int(0.005 * img.size))


def predict_slices(
    model: models.Model, images01: Sequence[np.ndarray], boxes: Sequence[pp.Box], *, batch_size: int = 16,
    flip_tta: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(P(GGO), P(consolidation))`` of each ``[0, 1]`` image, on the image's own grid."""
    if not images01:
        return []
    prep = model.preprocessing
    inputs = np.stack([prep.prepare_slice(im, b) for im, b in zip(images01, boxes)])
    prob = _run_batches(model, inputs, batch_size, flip_tta=flip_tta)
    return [
        tuple(pp.uncrop(pp.resize(p[c], box.side, order=1), box, im.shape) for c in (GGO, CONSOLIDATION))
        for im, box, p in zip(images01, boxes, prob)
    ]


#: Rough lungs closer than this fraction of the image's height / width to an edge: the image is
#: already a crop around the chest (MedSeg / Inf-Net slices, which training takes whole), not a
#: whole axial slice with the body and outside air around the lungs. Measured on the project's
#: data: MedSeg crops 0.002-0.030 (the 12 of 50 whose lungs are enclosed at all); Zenodo whole
#: slices >= 0.039 in 158 of 159 (every 10th slice; one at 0.008).
CROP_EDGE_FRACTION = 0.035


def _reaches_edge(mask: np.ndarray, fraction: float) -> bool:
    """Whether ``mask``'s bounding box comes within ``fraction`` of the image side of any edge."""
    ys, xs = np.nonzero(mask)
    (h, w), y0, y1, x0, x1 = mask.shape, ys.min(), ys.max(), xs.min(), xs.max()
    return min(y0 / h, (h - 1 - y1) / h, x0 / w, (w - 1 - x1) / w) < fraction


#: How a 2D image is cropped for the network: ``auto`` decides per image (:func:`slice_box`),
#: ``whole`` takes every image as it is (a data set of crops around the chest), ``lungs`` boxes
#: every image by its dark enclosed regions (a data set of whole axial slices).
CROPS = ("auto", "whole", "lungs")


def slice_box(image01: np.ndarray, *, margin: float = pp.BOX_MARGIN, crop: str = "auto") -> pp.Box:
    """Crop box of a 2D image as in training: the square lung box of a whole axial slice (dark
    enclosed regions covering at least 5 % of it, grown by ``margin``), else the whole image,
    which is then already a crop around the chest: too little enclosed dark, or lungs that
    reach the image edge (:data:`CROP_EDGE_FRACTION`). Boxing such a crop again by its dark
    regions cut off dense lesions at its rim (MedSeg training files: Dice 0.712 boxed, 0.844 whole;
    model card, "Crops in segment-slices"). ``crop`` (one of :data:`CROPS`) overrides the choice;
    ``lungs`` falls back to the whole image when no dark enclosed region is found."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
    if crop == "whole":
        return pp.full_box(image01.shape)
    rough = rough_lung_mask_8bit(image01)
    if crop == "lungs":
        return pp.square_box(rough, margin=margin) if rough.any() else pp.full_box(image01.shape)
    if rough.mean() < 0.05 or _reaches_edge(rough, CROP_EDGE_FRACTION):
        return pp.full_box(image01.shape)
    return pp.square_box(rough, margin=margin)


def segment_slice_images(
    images01: Sequence[np.ndarray],
    *,
    weights: str | Path | models.Model | None = None,
    boxes: Sequence[pp.Box] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = 16,
    threads: int = 0,
    flip_tta: bool = True,
) -> list[SliceResult]:
    """Segment lesions in 2D slice images (lung window, grey levels scaled to ``[0, 1]``).

    Parameters
    ----------
    images01
        ``(Y, X)`` grey images in ``[0, 1]``.
    boxes
        Crop boxes (e.g. from known lung masks); :func:`slice_box` of each image when ``None``.
    flip_tta
        Average with the prediction on the mirrored images (see :func:`predict_lesions_model`).

    Returns
    -------
    list of SliceResult
        One per image, each ``(Y, X)`` like its input. No 3D post-processing and no lung
        restriction (no HU, no lung mask).
    """
    for img in images01:
        if np.ndim(img) != 2:
            raise ValueError(f"slice images must be 2D grey, got shape {np.shape(img)}")
    model = _model(weights, threads)
    margin = model.preprocessing.box_margin
    boxes = [slice_box(im, margin=margin) for im in images01] if boxes is None else list(boxes)
    results = []
    for p_ggo, p_cons in predict_slices(model, images01, boxes, batch_size=batch_size, flip_tta=flip_tta):
        p_les = np.clip(p_ggo + p_cons, 0.0, 1.0).astype(np.float32)
        results.append(SliceResult(labels=_labels_from(p_les, p_ggo, p_cons, threshold), probability=p_les))
    return results
