"""Secondary Capture images of the report's key images, numbers burnt in (PS3.3 A.8.1).

For viewers that show neither SEG nor SR: each key image of the HTML report (axial slices with
the lesion overlay and lung outline, the coronal view, the per-slice profile) becomes one RGB
Secondary Capture Image (SOP class 1.2.840.10008.5.1.4.1.1.7, highdicom ``SCImage``) of one
new series, with a text band below it holding the result numbers and the research-use notice.
Patient and study attributes are copied from the source series (nothing else is).
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pneumolens.export.dicom_common import (
    MANUFACTURER,
    SERIES_NUMBERS,
    drop_source_equipment,
    lenient,
    new_uid,
    prepared_source_datasets,
    require_dicom_source,
    software_versions,
)
from pneumolens.export.dicom_encode import save_dicom

if TYPE_CHECKING:
    from pneumolens.analysis import Analysis

#: Patient Orientation (PS3.3 C.7.6.1.1.1: direction of the rows, then of the columns) of each
#: report view: axial images are shown in the radiological convention, coronal with the head up.
VIEW_ORIENTATION = {"axial": ("L", "P"), "coronal": ("L", "F")}
NOTICE = "pneumolens research software - not for diagnostic use"


def _number(value: float, digits: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def summary_lines(analysis: Analysis) -> list[str]:
    """The numbers burnt into every image (same values as analysis.json, rounded for display)."""
    f = analysis.findings
    both, right, left = f.region("lungs"), f.region("right_lung"), f.region("left_lung")
    lines = [
        (f"Lesions {_number(both.lesion_ml, 1)} mL = {_number(both.lesion_percent, 1)} % of lungs "
         f"({_number(both.volume_ml, 0)} mL)"),
        f"GGO {_number(both.ggo_ml, 1)} mL, consolidation {_number(both.consolidation_ml, 1)} mL",
        f"Right lung {_number(right.lesion_percent, 1)} %, left lung {_number(left.lesion_percent, 1)} %",
    ]
    scores = getattr(analysis, "scores", None)
    total = getattr(scores, "ct_severity_0_25", None) if scores is not None else None
    if isinstance(total, (int, float)):
        lines.append(f"CT severity score {total:g} / 25")
    return lines + [f"{NOTICE} ({software_versions()}, method {analysis.lesions.method})"]


def burn_in(png: bytes, lines: list[str], caption: str) -> np.ndarray:
    """RGB ``uint8`` array: the PNG with a black text band below it (caption, then ``lines``)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.open(io.BytesIO(png)).convert("RGB")
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    text = [caption, *lines]
    line_height = 17
    width = max(image.width, 560)
    canvas = Image.new("RGB", (width, image.height + line_height * len(text) + 10), "black")
    canvas.paste(image, ((width - image.width) // 2, 0))
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(text):
        draw.text((6, image.height + 4 + k * line_height), line, fill=(255, 255, 255), font=font)
    array = np.asarray(canvas, dtype=np.uint8)
    # even sizes keep every decoder happy
    return np.ascontiguousarray(array[: array.shape[0] // 2 * 2, : array.shape[1] // 2 * 2])


def build_secondary_captures(
    analysis: Analysis, *, images: list[dict[str, str]] | None = None, series_uid: str | None = None
) -> list[Any]:
    """One ``highdicom.sc.SCImage`` per key image of the report.

    Parameters
    ----------
    images
        The report's key images (:func:`pneumolens.export.report.key_images`), when already
        rendered; rendered here otherwise.
    """
    import highdicom as hd

    source = require_dicom_source(analysis)
    if images is None:
        from pneumolens.export.report import key_images

        images = key_images(analysis)
    lines = summary_lines(analysis)
    series_uid = series_uid or new_uid()
    out = []
    with lenient():
        datasets, _ = prepared_source_datasets(source)
        reference = datasets[0]
        # the views of the patient (axial, coronal); the per-slice chart has no patient orientation
        views = [(i, VIEW_ORIENTATION[i["caption"].split()[0]]) for i in images
                 if i["caption"].split()[0] in VIEW_ORIENTATION]
        for number, (image, orientation) in enumerate(views, start=1):
            pixels = burn_in(base64.b64decode(image["png"]), lines, image["caption"])
            sc = hd.sc.SCImage.from_ref_dataset(
                ref_dataset=reference,
                pixel_array=pixels,
                photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
                bits_allocated=8,
                coordinate_system=hd.CoordinateSystemNames.PATIENT,
                series_instance_uid=series_uid,
                series_number=SERIES_NUMBERS["sc"],
                sop_instance_uid=new_uid(),
                instance_number=number,
                manufacturer=MANUFACTURER,
                patient_orientation=orientation,
                transfer_syntax_uid="1.2.840.10008.1.2.1",
                series_description="pneumolens key images",
            )
            sc.BurnedInAnnotation = "YES"
            # General Series (PS3.3 C.7.3.1): the key images show the chest, an unpaired body
            # part, for which Laterality (Type 2C) is absent, not empty.
            sc.BodyPartExamined = "CHEST"
            if "Laterality" in sc:
                del sc.Laterality
            drop_source_equipment(sc)
            sc.ImageComments = image["caption"][:10240]
            out.append(sc)
    return out


def write_secondary_captures(analysis: Analysis, folder: str | Path, **options) -> list[Path]:
    """Write the key images as ``SC_001.dcm``... into ``folder``."""
    folder = Path(folder)
    paths = []
    for k, sc in enumerate(build_secondary_captures(analysis, **options), start=1):
        path = folder / f"SC_{k:03d}.dcm"
        save_dicom(sc, path)
        paths.append(path)
    return paths
