"""Write every output of an analysis into a folder, atomically (nothing partial on failure)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
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


#: Names in ``outputs`` of the DICOM files written with ``dicom=True`` (docs/dicom-outputs.md).
DICOM_OUTPUT_FILES = {
    "dicom_seg": "dicom/seg.dcm",
    "dicom_sr": "dicom/sr.dcm",
    "dicom_sc": "dicom/sc",
}


def write_outputs(
    analysis: Analysis,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    compress_masks: bool = True,
    dicom: bool = False,
    inputs: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Write analysis.json, masks (NIfTI, patient space) and report.html to ``out_dir``.

    With ``dicom``, also the DICOM SEG, TID 1500 SR and secondary captures under
    ``out_dir/dicom/`` (:func:`pneumolens.export.dicom.write_dicom_outputs`; an
    :class:`~pneumolens.errors.InputError` for a scan not read from DICOM, before anything is
    written).

    Written through :func:`pneumolens.export.writer.output_dir` (one rule for ``out_dir`` and
    ``overwrite``; nothing partial on failure; ``out_dir`` may not overlap ``inputs``). The two masks and the report are written in
    parallel threads (gzip and PNG encoding release the GIL). ``compress_masks=False`` writes
    ``.nii`` instead of ``.nii.gz`` (faster, about 20x larger). Returns the ``analysis.json``
    dictionary.
    """
    from pneumolens.export.report import key_images

    names = output_files(compress_masks=compress_masks)
    outputs = dict(names)
    if dicom:
        from pneumolens.export.dicom_common import require_dicom_source

        require_dicom_source(analysis)  # refuse before the output folder is touched
        outputs.update(DICOM_OUTPUT_FILES)
    start = time.perf_counter()
    with output_dir(out_dir, overwrite=overwrite, inputs=inputs) as tmp, ThreadPoolExecutor(max_workers=4) as pool:
        affine = analysis.scan.affine
        jobs = [
            pool.submit(write_mask_nifti, analysis.lungs.labels, affine, tmp / names["lungs_mask"]),
            pool.submit(write_mask_nifti, analysis.lesions.labels, affine, tmp / names["lesions_mask"]),
        ]
        if analysis.regions is not None:  # lobes.nii.gz (1 RUL .. 5 LLL) or zones.nii.gz
            key = f"{analysis.regions.kind}_mask"
            outputs[key] = names["lungs_mask"].replace("lungs", analysis.regions.kind)
            jobs.append(pool.submit(write_mask_nifti, analysis.regions.labels, affine, tmp / outputs[key]))
        # the key images are rendered once, for the report and the DICOM secondary captures
        images = pool.submit(key_images, analysis)
        data = analysis_to_dict(analysis, outputs=outputs)
        write_json(data, tmp / names["analysis"])
        jobs.append(pool.submit(lambda: write_report(analysis, data, tmp / names["report"], images=images.result())))
        if dicom:
            from pneumolens.export.dicom import write_dicom_outputs

            write_dicom_outputs(analysis, tmp / "dicom", images=images)
        for job in jobs:
            job.result()
    logger.info("outputs written in %.2f s", time.perf_counter() - start)
    return data
