"""The in-memory CT scan every stage works on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pneumolens.io.dicom_source import DicomSource


@dataclass(frozen=True)
class SkippedItem:
    """A file or series that was not analysed, and why."""

    item: str
    reason: str


@dataclass(frozen=True)
class ScanInfo:
    """Metadata of the analysed series.

    ``z_positions_mm`` and ``source_files`` are per slice of the canonical volume (index 0 is
    the most inferior slice): the DICOM ImagePositionPatient z (or the image z for volumes) and
    the file name the slice came from (``None`` for single-file volumes).

    No patient names or IDs are kept in the plain fields. ``dicom`` (DICOM input only) holds the
    source headers, UIDs and the patient and study attributes that derived DICOM objects (SEG,
    SR, secondary capture) must repeat; it is left out of ``repr`` and comparisons and never
    written to ``analysis.json`` or logs.
    """

    path: str
    format: str  # "dicom" | "nifti" | "nrrd" | "mha" | "array"
    series_instance_uid: str | None = None
    study_instance_uid: str | None = None
    modality: str | None = "CT"
    manufacturer: str | None = None
    manufacturer_model: str | None = None
    convolution_kernel: str | None = None
    slice_thickness_mm: float | None = None
    body_part: str | None = None
    patient_sex: str | None = None
    patient_age: float | None = None
    contrast_agent: str | None = None
    kvp: float | None = None
    exposure_mas: float | None = None
    transfer_syntax: str | None = None
    z_positions_mm: tuple[float, ...] = ()
    source_files: tuple[str | None, ...] = ()
    skipped: tuple[SkippedItem, ...] = ()
    n_unreadable_files: int = 0
    warnings: tuple[str, ...] = ()
    noise_hu: float | None = None  # median HU standard deviation in fat (image noise), if measurable
    #: Folder holding ``source_files`` (for a zip or in-memory datasets: a temporary folder that
    #: exists while :func:`pneumolens.io.open_scan` is open); ``None`` for single-file volumes.
    source_root: str | None = None
    series_description: str | None = None
    dicom: DicomSource | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CTScan:
    """A CT volume in Hounsfield units on the canonical grid.

    Attributes
    ----------
    volume
        ``int16`` HU array of shape ``(Z, Y, X)``: z inferior->superior, y anterior->posterior,
        x right->left (LPS; the radiological axial view when a slice is shown as an image).
    spacing
        Voxel size ``(z, y, x)`` in mm.
    affine
        4x4 matrix mapping a canonical voxel index ``(k, j, i)`` (order z, y, x) to LPS patient
        coordinates ``(x, y, z)`` in mm. For DICOM input it reproduces ImagePositionPatient of
        every slice.
    source_axes
        How the canonical array was derived from the array as stored in the source: the source
        array is ``np.flip(canonical, flips).transpose(inverse of permutation)``; see
        :meth:`to_source`. ``((0, 1, 2), ())`` when nothing was moved.
    info
        Series metadata (no patient identifiers).
    """

    volume: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    info: ScanInfo
    source_axes: tuple[tuple[int, int, int], tuple[int, ...]] = ((0, 1, 2), ())
    source_affine: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.volume.ndim != 3:
            raise ValueError(f"CTScan.volume must be 3D (Z, Y, X), got shape {self.volume.shape}")
        if len(self.spacing) != 3 or not all(s > 0 and np.isfinite(s) for s in self.spacing):
            raise ValueError(f"CTScan.spacing must be three positive mm values, got {self.spacing}")
        if self.affine.shape != (4, 4):
            raise ValueError(f"CTScan.affine must be 4x4, got {self.affine.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.volume.shape)  # type: ignore[return-value]

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    def to_source(self, array: np.ndarray) -> np.ndarray:
        """Return ``array`` (canonical ``(Z, Y, X)`` grid) in the source array's axis order."""
        permutation, flips = self.source_axes
        out = np.flip(array, axis=flips) if flips else array
        return np.transpose(out, np.argsort(permutation))


def scan_from_array(
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    origin_lps: tuple[float, float, float] = (0.0, 0.0, 0.0),
    path: str = "<array>",
) -> CTScan:
    """Wrap a canonical ``(Z, Y, X)`` HU array (phantoms, tests, benchmarks) as a :class:`CTScan`."""
    sz, sy, sx = (float(s) for s in spacing)
    affine = np.array(
        [[0, 0, sx, origin_lps[0]], [0, sy, 0, origin_lps[1]], [sz, 0, 0, origin_lps[2]], [0, 0, 0, 1.0]]
    )
    z = tuple(origin_lps[2] + sz * k for k in range(volume.shape[0]))
    return CTScan(
        volume=np.asarray(volume, dtype=np.int16),
        spacing=(sz, sy, sx),
        affine=affine,
        info=ScanInfo(path=path, format="array", z_positions_mm=z, source_files=(None,) * volume.shape[0]),
    )
