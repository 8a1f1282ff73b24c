"""Key images of an analysis: axial slices and a coronal view with lesion overlay."""

from __future__ import annotations

import io

import numpy as np

from pneumolens.masks import CONSOLIDATION, GGO

LUNG_WINDOW = (-1350.0, 150.0)  # HU; centre -600, width 1500
# RGBA overlay colours: ground-glass amber, consolidation red, lung outline cyan.
_COLOURS = {GGO: (1.0, 0.75, 0.0, 0.45), CONSOLIDATION: (0.9, 0.1, 0.1, 0.55)}


def key_slice_indices(lesion_labels: np.ndarray, lungs: np.ndarray, *, n: int = 4) -> list[int]:
    """Axial slices to show: those with most lesion, spread out; evenly spaced lung slices if none."""
    lesion_area = (lesion_labels > 0).sum(axis=(1, 2))
    lung_slices = np.flatnonzero(lungs.any(axis=(1, 2)))
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


def _overlay(labels: np.ndarray) -> np.ndarray:
    rgba = np.zeros(labels.shape + (4,), dtype=float)
    for value, colour in _COLOURS.items():
        rgba[labels == value] = colour
    return rgba


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", facecolor="black")
    return buffer.getvalue()


def render_view(
    image: np.ndarray,
    labels: np.ndarray,
    lungs: np.ndarray,
    *,
    pixel_aspect: float = 1.0,
    title: str = "",
    flip_vertical: bool = False,
) -> bytes:
    """PNG of one 2D HU image in a lung window with lesion overlay and lung outline."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if flip_vertical:  # coronal: put superior at the top
        image, labels, lungs = image[::-1], labels[::-1], lungs[::-1]
    fig, ax = plt.subplots(figsize=(4, 4 * image.shape[0] * pixel_aspect / max(image.shape[1], 1)))
    ax.imshow(image, cmap="gray", vmin=LUNG_WINDOW[0], vmax=LUNG_WINDOW[1], aspect=pixel_aspect,
              interpolation="nearest")
    if lungs.any():
        ax.contour(lungs.astype(float), levels=[0.5], colors=["#00d0ff"], linewidths=0.6)
    ax.imshow(_overlay(labels), aspect=pixel_aspect, interpolation="nearest")
    ax.set_title(title, color="white", fontsize=9)
    ax.text(0.01, 0.5, "R", color="white", transform=ax.transAxes, fontsize=8, va="center")
    ax.text(0.97, 0.5, "L", color="white", transform=ax.transAxes, fontsize=8, va="center")
    ax.axis("off")
    data = _png(fig)
    plt.close(fig)
    return data


def render_profile(z_mm: np.ndarray, lung_ml: np.ndarray, lesion_ml: np.ndarray) -> bytes:
    """PNG of lung and lesion volume per slice along z (superior at the top)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(lung_ml, z_mm, color="#00a0c0", label="lung mL / slice")
    ax.fill_betweenx(z_mm, 0, lesion_ml, color="#e03030", alpha=0.7, label="lesion mL / slice")
    ax.set_ylabel("z (mm, patient)")
    ax.set_xlabel("mL per slice")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


#: Region colours (RGB) for lobe/zone pictures: muted hues, distinct from the lesion colours.
REGION_COLOURS = ("#4e79a7", "#59a14f", "#b07aa1", "#76b7b2", "#5f4bb6", "#9d9d9d")


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

    Regions: a light fill and a boundary line per region (colours :data:`REGION_COLOURS` in
    label order, none of them amber or red; legend below). Lesions: ground-glass amber,
    consolidation red, as in :func:`render_view`, outlined in white, drawn over the regions so
    that the lobe holding a lesion can be read.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    if flip_vertical:
        image, regions, lesions = image[::-1], regions[::-1], lesions[::-1]
    colours = {label: REGION_COLOURS[i % len(REGION_COLOURS)] for i, label in enumerate(sorted(names))}
    tint = np.zeros(regions.shape + (4,), dtype=float)
    for label, colour in colours.items():
        tint[regions == label] = (*to_rgb(colour), 0.35)
    fig, ax = plt.subplots(figsize=(4, 4 * image.shape[0] * pixel_aspect / max(image.shape[1], 1) + 0.4))
    ax.imshow(image, cmap="gray", vmin=LUNG_WINDOW[0], vmax=LUNG_WINDOW[1], aspect=pixel_aspect,
              interpolation="nearest")
    ax.imshow(tint, aspect=pixel_aspect, interpolation="nearest")
    for label, colour in colours.items():
        mask = regions == label
        if mask.any():
            ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=0.9)
    ax.imshow(_overlay(lesions), aspect=pixel_aspect, interpolation="nearest")
    if lesions.any():
        ax.contour((lesions > 0).astype(float), levels=[0.5], colors=["white"], linewidths=0.5)
    ax.set_title(title, color="white", fontsize=9)
    ax.text(0.01, 0.5, "R", color="white", transform=ax.transAxes, fontsize=8, va="center")
    ax.text(0.97, 0.5, "L", color="white", transform=ax.transAxes, fontsize=8, va="center")
    handles = [Patch(color=colours[label], label=names[label]) for label in sorted(names)]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize=6,
              frameon=False, labelcolor="white", handlelength=1.0, columnspacing=0.8)
    ax.axis("off")
    data = _png(fig)
    plt.close(fig)
    return data
