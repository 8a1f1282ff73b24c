"""Outputs: analysis.json, NIfTI masks, HTML report (later DICOM SEG/SR)."""

from pneumolens.export.json import SCHEMA_VERSION, analysis_to_dict, write_json
from pneumolens.export.nifti import canonical_to_nifti_affine, write_mask_nifti
from pneumolens.export.outputs import write_outputs

__all__ = [
    "SCHEMA_VERSION",
    "analysis_to_dict",
    "canonical_to_nifti_affine",
    "write_json",
    "write_mask_nifti",
    "write_outputs",
]
