"""Write every output of an analysis into a folder, atomically (nothing partial on failure)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumolens.errors import InputError
from pneumolens.export.json import analysis_to_dict, write_json
from pneumolens.export.nifti import write_mask_nifti
from pneumolens.export.report import write_report

if TYPE_CHECKING:
    from pneumolens.pipeline import Analysis

OUTPUT_FILES = {
    "analysis": "analysis.json",
    "report": "report.html",
    "lungs_mask": "lungs.nii.gz",
    "lesions_mask": "lesions.nii.gz",
}


def check_out_dir(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Refuse to mix results into a non-empty folder unless asked to replace it."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("the output path exists and is not a folder", where=out, todo="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(
            "the output folder is not empty", where=out, todo="choose a new --out folder or pass --overwrite"
        )
    return out


def write_outputs(analysis: Analysis, out_dir: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Write analysis.json, masks (NIfTI, patient space) and report.html to ``out_dir``.

    Everything is written to a temporary sibling folder first and renamed at the end, so a
    failure leaves no partial output. Returns the ``analysis.json`` dictionary.
    """
    out = check_out_dir(out_dir, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        affine = analysis.scan.affine
        write_mask_nifti(analysis.lungs.labels, affine, tmp / OUTPUT_FILES["lungs_mask"])
        write_mask_nifti(analysis.lesions.labels, affine, tmp / OUTPUT_FILES["lesions_mask"])
        data = analysis_to_dict(analysis, outputs=OUTPUT_FILES)
        write_json(data, tmp / OUTPUT_FILES["analysis"])
        write_report(analysis, data, tmp / OUTPUT_FILES["report"])
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return data
