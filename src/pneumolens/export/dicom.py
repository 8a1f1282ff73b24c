"""All DICOM outputs of an analysis: SEG, Comprehensive 3D SR (TID 1500), secondary captures.

``pneumolens analyze --dicom`` writes them under ``OUT/dicom/`` (docs/dicom-outputs.md)::

    dicom/seg.dcm            DICOM SEG: lungs, lobes/zones, ground-glass, consolidation
    dicom/sr.dcm             Comprehensive 3D SR, TID 1500, referencing seg.dcm and the source
    dicom/sc/SC_001.dcm ...  Secondary captures of the report's key images, numbers burnt in
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from pneumolens.export.dicom_common import new_uid, require_dicom_source
from pneumolens.export.dicom_encode import save_dicom
from pneumolens.export.dicom_sc import write_secondary_captures
from pneumolens.export.dicom_seg import build_seg
from pneumolens.export.dicom_sr import build_sr

if TYPE_CHECKING:
    from pneumolens.analysis import Analysis

DICOM_DIR = "dicom"
SEG_FILE = "seg.dcm"
SR_FILE = "sr.dcm"
SC_DIR = "sc"


def write_dicom_outputs(
    analysis: Analysis, folder: str | Path, *, images: list[dict[str, str]] | Future | None = None
) -> dict[str, list[str]]:
    """Write SEG, SR and secondary captures of ``analysis`` into ``folder`` (created).

    Parameters
    ----------
    images
        The report's key images when already rendered (saves rendering them twice), or a
        ``Future`` of them (rendered in another thread while the SEG and SR are written).

    Returns
    -------
    dict
        ``{"seg": [...], "sr": [...], "sc": [...]}``: paths relative to ``folder``'s parent
        (``dicom/seg.dcm``...), for ``analysis.json``'s ``outputs``.

    Raises
    ------
    pneumolens.errors.InputError
        When the scan was not read from DICOM (nothing is written).
    """
    require_dicom_source(analysis)
    folder = Path(folder)
    (folder / SC_DIR).mkdir(parents=True, exist_ok=True)
    seg = build_seg(analysis, series_uid=new_uid())
    save_dicom(seg, folder / SEG_FILE)
    sr = build_sr(analysis, seg)
    save_dicom(sr, folder / SR_FILE)
    if isinstance(images, Future):
        images = images.result()
    scs = write_secondary_captures(analysis, folder / SC_DIR, images=images)
    base = folder.name
    return {
        "seg": [f"{base}/{SEG_FILE}"],
        "sr": [f"{base}/{SR_FILE}"],
        "sc": [f"{base}/{SC_DIR}/{p.name}" for p in scs],
    }
