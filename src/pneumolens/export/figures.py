"""Key images of an analysis: axial slices, a coronal view with lesion overlay, the z profile.

Drawn with Pillow only (no plotting stack): the report's images take milliseconds each.
"""

from __future__ import annotations

import io

import numpy as np

from pneumolens.masks import CONSOLIDATION, GGO
from pneumolens.models.preprocess import LUNG_WINDOW_HU

# RGBA overlay colours: ground-glass amber, consolidation red, lung outline cyan.
_COLOURS = {GGO: (1.0, 0.75, 0.0, 0.45), CONSOLIDATION: (0.9, 0.1, 0.1, 0.55)}


def key_slice_indices(lesion_labels: np.ndarray, lung_mask: np.ndarray, *, n: int = 4) -> list[int]:
    """Axial slices to show: those with most lesion, spread out; evenly spaced lung slices if none."""
    lesion_area = (lesion_labels > 0).sum(axis=(1, 2))
    lung_slices = np.flatnonzero(lung_mask.any(axis=(1, 2)))
    if lesion_area.max(initial=0) == 0:
        if lung_slices.size == 0:
            return [lesion_labels.shape[0] // 2]
        return sorted({int(i) for i in np.linspace(lung_slices[0], lung_slices[-1], n + 2)[1:-1].round()})
    chosen: list[int] = []
    min_gap = max(1, len(lung_slices) // (2 * n))
    for k in np.argsort(lesion_area)[::-1]:
        if lesion_area[k] == 0 or len(chosen) == n:
            break
        if all(abs(int(k) - c) >= min_gap for c in chosen):
            chosen.append(int(k))
    return sorted(chosen)


#: Lung outline colour (RGB), and the width (pixels) of rendered key images.
OUTLINE_RGB = (0, 208, 255)
IMAGE_WIDTH_PX = 360


def _text(draw, xy: tuple[float, float], text: str, fill) -> None:
    from PIL import ImageFont

    draw.text(xy, text, fill=fill, font=ImageFont.load_default())


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def render_view(
    image: np.ndarray,
    labels: np.ndarray,
    lung_mask: np.ndarray,
    *,
    pixel_aspect: float = 1.0,
    title: str = "",
    flip_vertical: bool = False,
) -> bytes:
    """PNG of one 2D HU image in the lung window with lesion overlay and lung outline.

    Rendered with Pillow (no plotting stack): the HU image in the lung window (:data:`~pneumolens.models.preprocess.LUNG_WINDOW_HU`) as grey,
    ground-glass blended amber and consolidation red, the lung border (mask minus its erosion)
    in cyan, resampled to :data:`IMAGE_WIDTH_PX` wide with rows stretched by ``pixel_aspect``
    (row spacing / column spacing), a title band on top and R/L markers (patient right on the
    image left).
    """
    from scipy import ndimage

    if flip_vertical:  # coronal: put superior at the top
        image, labels, lung_mask = image[::-1], labels[::-1], lung_mask[::-1]
    lo, hi = LUNG_WINDOW_HU
    grey = np.clip((np.asarray(image, np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    for value, (r, g, b, alpha) in _COLOURS.items():
        where = labels == value
        rgb[where] = (1 - alpha) * rgb[where] + alpha * np.array([r, g, b], np.float32) * 255
    lung = np.asarray(lung_mask, bool)
    if lung.any():
        rgb[lung & ~ndimage.binary_erosion(lung)] = OUTLINE_RGB
    canvas, _, _, _ = _framed(rgb, pixel_aspect, title, resample="bilinear")
    return _png(canvas)


def _framed(rgb: np.ndarray, pixel_aspect: float, title: str | None, *, resample: str, legend_px: int = 0):
    """The RGB picture scaled to the report's width (true pixel aspect) on a black canvas with a
    title band, R/L side marks and ``legend_px`` free rows below; returns (canvas, draw, title
    band height, picture height)."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(rgb.astype(np.uint8), "RGB")
    rows, cols = rgb.shape[:2]
    height = max(1, round(IMAGE_WIDTH_PX * rows * pixel_aspect / max(cols, 1)))
    method = Image.Resampling.BILINEAR if resample == "bilinear" else Image.Resampling.NEAREST
    picture = picture.resize((IMAGE_WIDTH_PX, height), method)
    band = 16 if title else 0
    canvas = Image.new("RGB", (IMAGE_WIDTH_PX, height + band + legend_px), "black")
    canvas.paste(picture, (0, band))
    draw = ImageDraw.Draw(canvas)
    if title:
        _text(draw, (4, 2), title, "white")
    _text(draw, (3, band + height // 2 - 5), "R", "white")
    _text(draw, (IMAGE_WIDTH_PX - 10, band + height // 2 - 5), "L", "white")
    return canvas, draw, band, height


def render_profile(z_mm: np.ndarray, lung_ml: np.ndarray, lesion_ml: np.ndarray) -> bytes:
    """PNG of lung and lesion volume per slice along z (superior at the top), drawn with Pillow."""
    from PIL import Image, ImageDraw

    size, left, right, top, bottom = IMAGE_WIDTH_PX, 44, 10, 10, 30
    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)
    z = np.asarray(z_mm, float)
    lung, lesion = np.asarray(lung_ml, float), np.asarray(lesion_ml, float)
    x_max = max(float(lung.max(initial=0.0)), float(lesion.max(initial=0.0)), 1e-6)
    z_lo, z_hi = (float(z.min()), float(z.max())) if z.size else (0.0, 1.0)
    z_span = max(z_hi - z_lo, 1e-6)

    def px(ml: np.ndarray, zz: np.ndarray) -> list[tuple[float, float]]:
        xs = left + (size - left - right) * ml / x_max
        ys = top + (size - top - bottom) * (z_hi - zz) / z_span
        return list(zip(xs.tolist(), ys.tolist()))

    order = np.argsort(z)
    z, lung, lesion = z[order], lung[order], lesion[order]
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):  # grid and tick labels
        x = left + (size - left - right) * frac
        y = top + (size - top - bottom) * frac
        draw.line([(x, top), (x, size - bottom)], fill=(225, 225, 225))
        draw.line([(left, y), (size - right, y)], fill=(225, 225, 225))
        _text(draw, (x - 8, size - bottom + 3), f"{x_max * frac:.1f}", "black")
        _text(draw, (2, y - 5), f"{z_hi - z_span * frac:.0f}", "black")
    if z.size:
        polygon = px(lesion, z) + px(np.zeros_like(lesion), z)[::-1]
        if len(polygon) >= 3:
            draw.polygon(polygon, fill=(224, 48, 48))
        if len(z) >= 2:
            draw.line(px(lung, z), fill=(0, 160, 192), width=2)
    draw.rectangle([left, top, size - right, size - bottom], outline="black")
    _text(draw, (left + 4, size - 14), "mL per slice;  z (mm, patient) upward", "black")
    _text(draw, (size - 150, top + 4), "lung mL / slice", (0, 130, 160))
    _text(draw, (size - 150, top + 16), "lesion mL / slice", (200, 30, 30))
    return _png(canvas)


#: Region colours (RGB) for lobe/zone pictures, in label order: muted hues, none amber or red
#: (the lesion colours).
REGION_COLOURS = ((78, 121, 167), (89, 161, 79), (176, 122, 161), (118, 183, 178), (95, 75, 182), (157, 157, 157))


def render_regions_view(
    image: np.ndarray,
    regions: np.ndarray,
    lesions: np.ndarray,
    names: dict[int, str],
    *,
    pixel_aspect: float = 1.0,
    title: str = "",
    flip_vertical: bool = False,
) -> bytes:
    """PNG of one 2D HU image with the regions (lobes or zones) tinted and outlined, lesions on top.

    Like :func:`render_view`: each region is blended (35 %) in its colour of
    :data:`REGION_COLOURS` with its border drawn in full colour; then ground-glass (amber) and
    consolidation (red) are blended over the regions and outlined in white, so the lobe that
    holds a lesion can be read; a legend of the region names runs along the bottom.
    """
    from scipy import ndimage

    if flip_vertical:
        image, regions, lesions = image[::-1], regions[::-1], lesions[::-1]
    lo, hi = LUNG_WINDOW_HU
    grey = np.clip((np.asarray(image, np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    colours = {label: REGION_COLOURS[i % len(REGION_COLOURS)] for i, label in enumerate(sorted(names))}
    for label, colour in colours.items():
        where = regions == label
        rgb[where] = 0.65 * rgb[where] + 0.35 * np.array(colour, np.float32)
    for label, colour in colours.items():
        where = regions == label
        if where.any():
            rgb[where & ~ndimage.binary_erosion(where)] = colour
    for value, (r, g, b, alpha) in _COLOURS.items():
        where = lesions == value
        alpha = min(1.0, alpha + 0.25)
        rgb[where] = (1 - alpha) * rgb[where] + alpha * np.array([r, g, b], np.float32) * 255
    lesion = lesions > 0
    if lesion.any():
        rgb[lesion & ~ndimage.binary_erosion(lesion)] = (255, 255, 255)
    canvas, draw, band, height = _framed(rgb, pixel_aspect, title, resample="nearest", legend_px=16)
    step = IMAGE_WIDTH_PX // max(len(colours), 1)
    for i, (label, colour) in enumerate(colours.items()):
        x, y = 4 + i * step, band + height + 3
        draw.rectangle((x, y, x + 9, y + 9), fill=tuple(colour))
        _text(draw, (x + 12, y - 1), names[label].replace("_", " "), "white")
    return _png(canvas)
