"""Write every output of an analysis into a folder, atomically (nothing partial on failure)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumolens.export.json import analysis_to_dict, write_json
from pneumolens.export.nifti import write_mask_nifti
from pneumolens.export.report import write_report
from pneumolens.export.writer import output_dir

if TYPE_CHECKING:
    from pneumolens.analysis import Analysis

OUTPUT_FILES = {
    "analysis": "analysis.json",
    "report": "report.html",
    "lungs_mask": "lungs.nii.gz",
    "lesions_mask": "lesions.nii.gz",
}


def write_outputs(
    analysis: Analysis, out_dir: str | Path, *, overwrite: bool = False, inputs: Sequence[str | Path] = ()
) -> dict[str, Any]:
    """Write analysis.json, masks (NIfTI, patient space) and report.html to ``out_dir``.

    Written through :func:`pneumolens.export.writer.output_dir` (one rule for ``out_dir`` and
    ``overwrite``; nothing partial on failure). Returns the ``analysis.json`` dictionary.
    """
    with output_dir(out_dir, overwrite=overwrite, inputs=inputs) as tmp:
        affine = analysis.scan.affine
        write_mask_nifti(analysis.lungs.labels, affine, tmp / OUTPUT_FILES["lungs_mask"])
        write_mask_nifti(analysis.lesions.labels, affine, tmp / OUTPUT_FILES["lesions_mask"])
        data = analysis_to_dict(analysis, outputs=OUTPUT_FILES)
        write_json(data, tmp / OUTPUT_FILES["analysis"])
        write_report(analysis, data, tmp / OUTPUT_FILES["report"])
    return data
