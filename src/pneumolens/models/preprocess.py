"""Input normalisation shared by lesion-model training and inference.

One recipe for every source so the network sees the same intensity distribution whether the
slice came from a HU volume, a windowed JPG or a CLAHE-processed PNG:

1. HU volumes are windowed to the lung window ``[-1350, 150]`` HU and scaled to ``[0, 1]``;
   8-bit slices are divided by 255 (they already are in a lung window or equalised).
2. The slice is cropped to a square box around the lungs (padding with 0 where the box leaves
   the image) and resampled to the network size.
3. Contrast-limited adaptive histogram equalisation (CLAHE; Zuiderveld, Graphics Gems IV, 1994)
   with ``clip_limit=0.03`` (about OpenCV's ``clipLimit=7`` used on the Zenodo slices) is applied
   to the resampled slice.

Numpy + scikit-image only: no torch, so inference does not need the ``train`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from pneumolens.errors import ModelError
from pneumolens.grid import bbox

#: The lung window (HU): centre -600, width 1500. Model inputs and report images use it.
LUNG_WINDOW_HU: tuple[float, float] = (-1350.0, 150.0)
CLAHE_CLIP_LIMIT = 0.03
#: Fraction of the lung box side added on every side before squaring it.
BOX_MARGIN = 0.06


@dataclass(frozen=True)
class Box:
    """A square crop box in pixel coordinates; may extend past the image (padded with 0)."""

    y0: int
    x0: int
    side: int

    def __post_init__(self) -> None:
        if self.side < 1:
            raise ValueError(f"Box.side must be >= 1, got {self.side}")


def window_hu(hu: np.ndarray, window: tuple[float, float] = LUNG_WINDOW_HU) -> np.ndarray:
    """Map HU to ``[0, 1]`` with a linear window (float32, same shape)."""
    lo, hi = window
    out = (np.asarray(hu, dtype=np.float32) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def square_box(mask: np.ndarray, *, margin: float = BOX_MARGIN) -> Box:
    """Square box around the ``True`` pixels of a 2D mask (or of its projection for 3D).

    Parameters
    ----------
    mask
        ``(Y, X)`` or ``(Z, Y, X)`` boolean mask; for 3D the union over z is boxed.
    margin
        Fraction of the longer side added on each side.

    Returns
    -------
    Box
        The whole image when the mask is empty.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim == 3:
        m = m.any(axis=0)
    if m.ndim != 2:
        raise ValueError(f"square_box needs a 2D or 3D mask, got shape {mask.shape}")
    found = bbox(m)
    if found is None:
        return full_box(m.shape)
    (y0, y1), (x0, x1) = ((s.start, s.stop) for s in found)
    side = max(y1 - y0, x1 - x0)
    side = int(np.round(side * (1.0 + 2.0 * margin)))
    cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
    return Box(int(np.round(cy - side / 2.0)), int(np.round(cx - side / 2.0)), max(side, 1))


def full_box(shape: tuple[int, ...]) -> Box:
    """Square box covering the whole ``(Y, X)`` image, centred (padding the short side)."""
    h, w = shape[-2:]
    side = max(h, w)
    return Box((h - side) // 2, (w - side) // 2, side)


def crop(image: np.ndarray, box: Box, *, fill: float = 0.0) -> np.ndarray:
    """Crop ``image[..., y, x]`` to ``box``, padding with ``fill`` outside the image."""
    h, w = image.shape[-2:]
    out = np.full(image.shape[:-2] + (box.side, box.side), fill, dtype=image.dtype)
    sy0, sx0 = max(box.y0, 0), max(box.x0, 0)
    sy1, sx1 = min(box.y0 + box.side, h), min(box.x0 + box.side, w)
    if sy1 > sy0 and sx1 > sx0:
        out[..., sy0 - box.y0 : sy1 - box.y0, sx0 - box.x0 : sx1 - box.x0] = image[..., sy0:sy1, sx0:sx1]
    return out


def uncrop(patch: np.ndarray, box: Box, shape: tuple[int, int], *, fill: float = 0.0) -> np.ndarray:
    """Inverse of :func:`crop`: place a ``(..., side, side)`` patch back into an image of ``shape``."""
    h, w = shape
    out = np.full(patch.shape[:-2] + (h, w), fill, dtype=patch.dtype)
    sy0, sx0 = max(box.y0, 0), max(box.x0, 0)
    sy1, sx1 = min(box.y0 + box.side, h), min(box.x0 + box.side, w)
    if sy1 > sy0 and sx1 > sx0:
        out[..., sy0:sy1, sx0:sx1] = patch[..., sy0 - box.y0 : sy1 - box.y0, sx0 - box.x0 : sx1 - box.x0]
    return out


def resize(image: np.ndarray, size: int | tuple[int, int], *, order: int) -> np.ndarray:
    """Resample the last two axes to ``size`` (spline ``order``: 0 labels, 1 images)."""
    target = (size, size) if isinstance(size, int) else tuple(size)
    h, w = image.shape[-2:]
    if (h, w) == target:
        return image.copy()
    zoom = (1.0,) * (image.ndim - 2) + (target[0] / h, target[1] / w)
    out = ndimage.zoom(image, zoom, order=order, mode="nearest", grid_mode=True)
    # zoom may be off by one pixel from rounding; fix the shape exactly.
    out = out[..., : target[0], : target[1]]
    pad = [(0, 0)] * (image.ndim - 2) + [(0, target[0] - out.shape[-2]), (0, target[1] - out.shape[-1])]
    return np.pad(out, pad, mode="edge") if any(p[1] for p in pad) else out


def interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` linear interpolation weights on the pixel-area grid (``grid_mode``),
    edges clamped: ``M @ v`` resamples a length-``n_in`` signal to ``n_out`` samples."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = (pos - lo).astype(np.float32)
    m = np.zeros((n_out, n_in), dtype=np.float32)
    m[np.arange(n_out), lo] += 1.0 - w
    m[np.arange(n_out), hi] += w
    return m


def restore_region(stack: np.ndarray, box: Box, shape: tuple[int, int], *,
                   out: np.ndarray | None = None) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Resample network outputs ``(N, S, S)`` back onto the image part covered by ``box``.

    Returns the ``(N, h, w)`` values and the ``(y, x)`` slices of the image they belong to
    (the box clipped to the image); separable linear interpolation as matrix products, which is
    much faster than ``ndimage.zoom`` on whole volumes. With ``out`` (``(N, H, W)``, the image
    grid) the values are written into ``out[:, ys, xs]`` slice by slice and that view is
    returned: no second volume-sized array.
    """
    h, w = shape
    ys = slice(max(box.y0, 0), min(box.y0 + box.side, h))
    xs = slice(max(box.x0, 0), min(box.x0 + box.side, w))
    n = stack.shape[-1]
    m = interpolation_matrix(n, box.side)
    my = m[ys.start - box.y0 : ys.stop - box.y0]
    mx = m[xs.start - box.x0 : xs.stop - box.x0]
    flat = stack.astype(np.float32, copy=False)
    along_x = (flat.reshape(-1, n) @ mx.T).reshape(stack.shape[0], n, -1)  # (N, S, w): one GEMM
    # One (h, S) x (S, w) product per slice writes (N, h, w) in order; a tensordot would copy
    # its operand into (S, N*w) and its result back to (N, h, w) (1-1.8 s against 0.1 s for a
    # 150x512x512 scan).
    if out is None:
        return np.matmul(my, along_x), (ys, xs)
    if out.shape != (stack.shape[0], h, w):
        raise ValueError(f"out has shape {out.shape}, expected {(stack.shape[0], h, w)}")
    region = out[:, ys, xs]
    for k in range(stack.shape[0]):  # the same product per slice as the stacked matmul above
        region[k] = my @ along_x[k]
    return region, (ys, xs)


def clahe(image01: np.ndarray, *, clip_limit: float = CLAHE_CLIP_LIMIT) -> np.ndarray:
    """CLAHE of a 2D ``[0, 1]`` image (float32 out; skimage's ``equalize_adapthist``)."""
    from skimage.exposure import equalize_adapthist

    return equalize_adapthist(np.clip(image01, 0.0, 1.0), clip_limit=clip_limit).astype(np.float32)


def enclosed_regions(dark: np.ndarray, *, min_pixels: int) -> np.ndarray:
    """Dark regions of a 2D slice not connected to the image border, holes filled.

    With ``dark`` = air (HU < -400, or a dark threshold on a lung-window image) this is a rough
    lung mask: the air outside the body touches the border, the lungs do not.
    """
    labels, n = ndimage.label(dark)
    if n == 0:
        return np.zeros(dark.shape, dtype=bool)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep = np.bincount(labels.ravel(), minlength=n + 1) >= min_pixels
    keep[0] = False
    keep[border] = False
    return ndimage.binary_fill_holes(keep[labels])


def prepare_slice(image01: np.ndarray, box: Box, size: int, *, clip_limit: float | None = CLAHE_CLIP_LIMIT) -> np.ndarray:
    """Crop, resample and equalise one ``[0, 1]`` slice: the network input ``(size, size)``.

    ``clip_limit=None`` skips CLAHE (models trained without it).
    """
    resized = resize(crop(np.asarray(image01, dtype=np.float32), box), size, order=1)
    return resized if clip_limit is None else clahe(resized, clip_limit=clip_limit)


#: Keys of a sidecar's ``input`` this version understands; any other key is refused, since it
#: would describe a normalisation that would not be applied.
SIDECAR_INPUT_KEYS = frozenset(
    {"name", "kind", "size", "channels", "hu_window", "clahe_clip_limit", "box_margin", "normalisation"}
)


@dataclass(frozen=True)
class Preprocessing:
    """How a model's input is made, as its sidecar says: the model is fed as it was trained.

    Attributes
    ----------
    hu_window
        ``(low, high)`` HU mapped linearly to ``[0, 1]`` (clipped).
    box_margin
        Fraction of the lung box side added on every side of the square crop.
    clahe_clip_limit
        CLAHE clip limit on the resampled slice; ``None``: no CLAHE.
    size
        Side of the square network input (pixels).
    """

    hu_window: tuple[float, float] = LUNG_WINDOW_HU
    box_margin: float = BOX_MARGIN
    clahe_clip_limit: float | None = CLAHE_CLIP_LIMIT
    size: int = 192

    def __post_init__(self) -> None:
        lo, hi = self.hu_window
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"hu_window must be (low, high) with low < high, got {self.hu_window}")
        if not 0.0 <= self.box_margin < 1.0:
            raise ValueError(f"box_margin must be in [0, 1), got {self.box_margin}")
        if self.clahe_clip_limit is not None and not 0.0 < self.clahe_clip_limit <= 1.0:
            raise ValueError(f"clahe_clip_limit must be in (0, 1] or None, got {self.clahe_clip_limit}")
        if self.size < 16:
            raise ValueError(f"size must be at least 16 pixels, got {self.size}")

    @classmethod
    def from_sidecar(cls, meta: Mapping[str, Any], *, where: str) -> Preprocessing:
        """Read ``meta["input"]`` of a model sidecar.

        ``size``, ``hu_window``, ``box_margin`` and ``clahe_clip_limit`` (``null``: no CLAHE) are
        required; ``channels`` must be 1.

        Raises
        ------
        ModelError
            A key is missing, has an unusable value, or describes a normalisation this version
            cannot apply (unknown keys, several channels).
        """
        spec = meta.get("input")
        if not isinstance(spec, Mapping):
            raise ModelError(f"model sidecar {where} has no 'input' object describing the preprocessing")
        unknown = sorted(set(spec) - SIDECAR_INPUT_KEYS)
        if unknown:
            raise ModelError(
                f"model sidecar {where} asks for input preprocessing this version cannot apply ({', '.join(unknown)}); "
                f"known keys: {', '.join(sorted(SIDECAR_INPUT_KEYS))}. Re-export the model for this pneumolens "
                "or use a pneumolens that supports it."
            )
        missing = [k for k in ("size", "hu_window", "box_margin", "clahe_clip_limit") if k not in spec]
        if missing:
            raise ModelError(
                f"model sidecar {where} lacks input.{', input.'.join(missing)}; without it the model cannot be fed "
                "as it was trained. Add the values used in training (e.g. \"hu_window\": [-1350, 150], "
                "\"box_margin\": 0.06, \"clahe_clip_limit\": 0.03 or null) or re-export with 'pneumolens train'."
            )
        if int(spec.get("channels", 1)) != 1:
            raise ModelError(f"model sidecar {where}: input.channels is {spec['channels']}; this version feeds 1 channel")
        try:
            window = tuple(float(v) for v in spec["hu_window"])
            if len(window) != 2:
                raise ValueError(f"hu_window needs two values, got {spec['hu_window']}")
            clip = spec["clahe_clip_limit"]
            return cls(
                hu_window=window,  # type: ignore[arg-type]
                box_margin=float(spec["box_margin"]),
                clahe_clip_limit=None if clip is None else float(clip),
                size=int(spec["size"]),
            )
        except (TypeError, ValueError) as exc:
            raise ModelError(f"model sidecar {where} has an unusable input description: {exc}") from None

    def prepare_slice(self, image01: np.ndarray, box: Box) -> np.ndarray:
        """The network input ``(size, size)`` of one ``[0, 1]`` slice (see :func:`prepare_slice`)."""
        return prepare_slice(image01, box, self.size, clip_limit=self.clahe_clip_limit)


def prepare_label(label: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Crop and resample an integer label slice with nearest neighbour (uint8 out)."""
    return resize(crop(np.asarray(label, dtype=np.uint8), box), size, order=0).astype(np.uint8)
