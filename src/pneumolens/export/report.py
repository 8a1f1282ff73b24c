"""Self-contained HTML report: tables and key images (PNG embedded as base64)."""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pneumolens.export.figures import (
    key_slice_indices,
    render_profile,
    render_regions_view,
    render_view,
)
from pneumolens.findings import HU_BANDS

if TYPE_CHECKING:
    from pneumolens.analysis import Analysis


def _fmt(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def key_images(analysis: Analysis) -> list[dict[str, str]]:
    """Axial key slices, a coronal view through the most affected plane and the z profile."""
    volume, lung_mask, labels = analysis.scan.volume, analysis.lungs.union, analysis.lesions.labels
    sz, sy, sx = analysis.scan.spacing
    z_mm = np.array([s.z_mm for s in analysis.findings.slices])
    images = []
    for k in key_slice_indices(labels, lung_mask):
        png = render_view(volume[k], labels[k], lung_mask[k], pixel_aspect=sy / sx,
                          title=f"axial z = {z_mm[k]:.1f} mm")
        images.append({"png": png, "caption": f"axial slice {k + 1}/{volume.shape[0]}, z = {z_mm[k]:.1f} mm"})
    lesion_by_y = (labels > 0).sum(axis=(0, 2))
    j = int(np.argmax(lesion_by_y)) if lesion_by_y.any() else int(np.argmax(lung_mask.sum(axis=(0, 2))))
    images.append({
        "png": render_view(volume[:, j, :], labels[:, j, :], lung_mask[:, j, :], pixel_aspect=sz / sx,
                           title="coronal", flip_vertical=True),
        "caption": f"coronal plane {j + 1}/{volume.shape[1]}",
    })
    images.extend(region_images(analysis))
    slices = analysis.findings.slices
    voxel_ml = analysis.scan.voxel_volume_ml
    images.append({
        "png": render_profile(z_mm, np.array([s.lung_voxels for s in slices]) * voxel_ml,
                              np.array([s.lesion_ml for s in slices])),
        "caption": "lung and lesion volume per slice",
    })
    return [{"png": base64.b64encode(i["png"]).decode("ascii"), "caption": i["caption"]} for i in images]


def region_images(analysis: Analysis) -> list[dict[str, bytes | str]]:
    """Coronal and axial views with the lobes (or zones) tinted and the lesions over them.

    The coronal plane passes through the lungs' centre of mass (front to back), where all five
    lobes show; the axial slice is the one with the most lesion (the middle of the lungs if none).
    """
    regions = analysis.regions
    if regions is None:
        return []
    volume, lungs, labels = analysis.scan.volume, analysis.lungs.union, analysis.lesions.labels
    sz, sy, sx = analysis.scan.spacing
    kind = "lobes" if regions.kind == "lobes" else "zones"
    lesion_by_z = (labels > 0).sum(axis=(1, 2))
    lung_z = np.flatnonzero(lungs.any(axis=(1, 2)))
    k = int(np.argmax(lesion_by_z)) if lesion_by_z.any() else int(lung_z[len(lung_z) // 2]) if lung_z.size else 0
    lung_by_y = lungs.sum(axis=(0, 2))
    j = round(float((lung_by_y * np.arange(lung_by_y.size)).sum() / max(lung_by_y.sum(), 1)))
    return [
        {"png": render_regions_view(volume[:, j, :], regions.labels[:, j, :], labels[:, j, :], regions.names,
                                    pixel_aspect=sz / sx, title=f"coronal: {kind} and lesions", flip_vertical=True),
         "caption": f"{kind} (coronal plane {j + 1}/{volume.shape[1]}) with lesions"},
        {"png": render_regions_view(volume[k], regions.labels[k], labels[k], regions.names, pixel_aspect=sy / sx,
                                    title=f"axial: {kind} and lesions"),
         "caption": f"{kind} (axial slice {k + 1}/{volume.shape[0]}) with lesions"},
    ]


def write_report(
    analysis: Analysis, data: dict[str, Any], path: str | Path, *, images: list[dict[str, str]] | None = None
) -> Path:
    """Render the HTML report for ``analysis`` whose JSON dictionary is ``data``.

    ``images``: the :func:`key_images` when already rendered (the DICOM secondary captures use
    the same ones).
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pneumolens.export", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    html = env.get_template("report.html").render(
        d=data, images=key_images(analysis) if images is None else images, bands=[b[0] for b in HU_BANDS], fmt=_fmt
    )
    path = Path(path)
    path.write_text(html, encoding="utf-8")
    return path
