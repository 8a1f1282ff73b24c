"""Write every output of an analysis into a folder, atomically (nothing partial on failure)."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumolens.export.json import analysis_to_dict, write_json
from pneumolens.export.nifti import write_mask_nifti
from pneumolens.export.report import write_report
from pneumolens.export.writer import output_dir

if TYPE_CHECKING:
    from pneumolens.analysis import Analysis

logger = logging.getLogger(__name__)

OUTPUT_FILES = {
    "analysis": "analysis.json",
    "report": "report.html",
    "lungs_mask": "lungs.nii.gz",
    "lesions_mask": "lesions.nii.gz",
}


def output_files(*, compress_masks: bool = True) -> dict[str, str]:
    """File names of the outputs: :data:`OUTPUT_FILES`, masks as ``.nii`` when not compressed."""
    if compress_masks:
        return dict(OUTPUT_FILES)
    return {k: v.removesuffix(".gz") if k.endswith("_mask") else v for k, v in OUTPUT_FILES.items()}


def write_outputs(
    analysis: Analysis, out_dir: str | Path, *, overwrite: bool = False, compress_masks: bool = True
) -> dict[str, Any]:
    """Write analysis.json, masks (NIfTI, patient space) and report.html to ``out_dir``.

    Written through :func:`pneumolens.export.writer.output_dir` (one rule for ``out_dir`` and
    ``overwrite``; nothing partial on failure). The two masks and the report are written in
    parallel threads (gzip and PNG encoding release the GIL). ``compress_masks=False`` writes
    ``.nii`` instead of ``.nii.gz`` (faster, about 20x larger). Returns the ``analysis.json``
    dictionary.
    """
    names = output_files(compress_masks=compress_masks)
    start = time.perf_counter()
    with output_dir(out_dir, overwrite=overwrite) as tmp:
        data = analysis_to_dict(analysis, outputs=names)
        write_json(data, tmp / names["analysis"])
        affine = analysis.scan.affine
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = [
                pool.submit(write_mask_nifti, analysis.lungs.labels, affine, tmp / names["lungs_mask"]),
                pool.submit(write_mask_nifti, analysis.lesions.labels, affine, tmp / names["lesions_mask"]),
                pool.submit(write_report, analysis, data, tmp / names["report"]),
            ]
            for job in jobs:
                job.result()
    logger.info("outputs written in %.2f s", time.perf_counter() - start)
    return data
