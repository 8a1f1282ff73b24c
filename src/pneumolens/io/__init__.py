"""Reading CT: series discovery and selection, DICOM/NIfTI/NRRD/MHA, orientation."""

from pneumolens.io.load import load_scan, open_scan
from pneumolens.io.scan import CTScan, ScanInfo, SkippedItem

__all__ = ["CTScan", "ScanInfo", "SkippedItem", "load_scan", "open_scan"]
