"""Write-then-read round trips of :func:`pneumolens.io.dicom_write.write_ct_series`."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from io_helpers import (
    SPACING,
    assert_same_voxels,
    encode_jpeg_lossless_sv1,
    phantom,
    source_world,
    write,
)
from pydicom.encaps import encapsulate
from pydicom.pixels import get_encoder
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from pneumolens.io import load_scan

_C, _S = np.cos(np.radians(20)), np.sin(np.radians(20))

GEOMETRIES = [
    # (id, orientation, slice_direction, expected source_axes)
    ("axial", "axial", None, ((0, 1, 2), ())),
    # The source order is sorted along the normal, so files written top-down need no flip.
    ("reversed slice order", "axial", (0.0, 0.0, -1.0), ((0, 1, 2), ())),
    ("rotated 180 in plane", (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0), None, ((0, 1, 2), (1, 2))),
    ("rows along y", (0.0, 1.0, 0.0, 1.0, 0.0, 0.0), None, ((0, 2, 1), (0,))),
    ("feet-first flipped", (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0), None, ((0, 1, 2), (0, 2))),
    ("oblique 20 degrees in plane", (_C, _S, 0.0, -_S, _C, 0.0), None, ((0, 1, 2), ())),
]


@pytest.mark.parametrize(("case", "orientation", "direction", "axes"), GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
def test_geometry_round_trip(tmp_path, case, orientation, direction, axes):
    volume = phantom()
    origin = (-12.5, 30.0, -400.0)
    write(tmp_path, volume, orientation=orientation, slice_direction=direction, origin=origin)
    scan = load_scan(tmp_path)
    assert scan.source_axes == axes
    assert_same_voxels(scan, volume, source_world(volume.shape, SPACING, orientation, origin, direction))
    np.testing.assert_allclose(np.linalg.norm(scan.affine[:3, :3], axis=0), scan.spacing)
    # Canonical axes point superior, posterior, left.
    assert scan.affine[2, 0] > 0 and scan.affine[1, 1] > 0 and scan.affine[0, 2] > 0
    # z positions are per canonical slice, inferior first, and the file names follow them.
    z = np.asarray(scan.info.z_positions_mm)
    assert np.all(np.diff(z) > 0)
    for k in (0, len(z) - 1):
        ds = pydicom.dcmread(tmp_path / scan.info.source_files[k], stop_before_pixels=True)
        assert float(ds.ImagePositionPatient[2]) == pytest.approx(z[k])


def test_to_source_restores_the_stored_order(tmp_path):
    volume = phantom()
    write(tmp_path, volume, orientation=(0.0, 1.0, 0.0, 1.0, 0.0, 0.0))  # normal points down
    scan = load_scan(tmp_path)
    # The source order is the stack sorted along the slice normal: here the files' order.
    np.testing.assert_array_equal(scan.to_source(scan.volume), volume)
    np.testing.assert_allclose(scan.source_affine[:3, 3], (0.0, 0.0, 0.0))


def test_instance_numbers_and_file_names_do_not_decide_the_order(tmp_path):
    volume = phantom()
    rng = np.random.default_rng(7)
    numbers = rng.permutation(volume.shape[0]) + 1
    names = [f"x{n:03d}.dcm" for n in rng.permutation(volume.shape[0])]
    write(tmp_path, volume, instance_numbers=numbers.tolist(), file_names=names)
    np.testing.assert_array_equal(load_scan(tmp_path).volume, volume)


def _encodable(uid) -> bool:
    if not uid.is_compressed:
        return True
    try:
        return get_encoder(uid).is_available
    except NotImplementedError:
        return False


@pytest.mark.parametrize(
    "transfer_syntax",
    [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless],
    ids=lambda u: u.name.split(" (")[0].split(",")[0],
)
def test_transfer_syntax_round_trip(tmp_path, transfer_syntax):
    if not _encodable(transfer_syntax):
        pytest.skip(f"pydicom has no encoder for {transfer_syntax.name} (decoding is tested on real data)")
    volume = phantom(n=6)
    write(tmp_path, volume, transfer_syntax=transfer_syntax)
    assert pydicom.dcmread(next(tmp_path.iterdir())).file_meta.TransferSyntaxUID == transfer_syntax
    scan = load_scan(tmp_path)
    np.testing.assert_array_equal(scan.volume, volume)
    assert scan.info.transfer_syntax == transfer_syntax


def test_jpeg_lossless_round_trip(tmp_path):
    """JPEG Lossless SV1 (P002's transfer syntax), encoded by the tests' own minimal encoder."""
    volume = phantom(n=5)
    for path in write(tmp_path, volume):
        ds = pydicom.dcmread(path)
        ds.PixelData = encapsulate([encode_jpeg_lossless_sv1(ds.pixel_array)])
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
        ds.save_as(path, enforce_file_format=True)
    scan = load_scan(tmp_path)
    assert scan.info.transfer_syntax == JPEGLosslessSV1
    np.testing.assert_array_equal(scan.volume, volume)


@pytest.mark.parametrize(("slope", "intercept"), [(1.0, -1024.0), (1.0, 0.0), (0.5, -1024.0), (2.0, -3000.0)])
def test_rescale_to_hu(tmp_path, slope, intercept):
    volume = phantom(n=4)
    if slope == 2.0:
        volume = (volume // 2) * 2  # representable with slope 2
    write(tmp_path, volume, rescale_slope=slope, rescale_intercept=intercept)
    ds = pydicom.dcmread(next(tmp_path.iterdir()))
    assert ds.PixelRepresentation == (1 if (volume.min() - intercept) < 0 else 0)
    np.testing.assert_array_equal(load_scan(tmp_path).volume, volume)


def test_writer_rejects_values_that_do_not_fit(tmp_path):
    with pytest.raises(ValueError, match="do not fit 16-bit storage"):
        write(tmp_path, np.full((2, 4, 4), 70000, dtype=np.int32))


def test_written_files_are_ct_image_storage(tmp_path):
    paths = write(tmp_path, phantom(n=2), patient_age="045Y", patient_sex="F")
    ds = pydicom.dcmread(paths[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert ds.Modality == "CT" and ds.RescaleType == "HU"
    scan = load_scan(tmp_path)
    assert scan.info.patient_age == 45 and scan.info.patient_sex == "F"
    # No patient name or ID survives into the scan metadata.
    assert "PNEUMOLENS" not in repr(scan.info).replace("pneumolens test series", "")
