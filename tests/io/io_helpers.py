"""Builders for the io tests: a small CT-like phantom and series written with
:func:`pneumolens.io.dicom_write.write_ct_series`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumolens.io.dicom_write import write_ct_series

SPACING = (2.5, 0.8, 0.7)  # slice step, row, column (mm); 24 slices cover 60 mm
#: One study for every series a test writes into one folder (several studies are refused).
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"


def phantom(n: int = 24, rows: int = 36, columns: int = 40, *, seed: int = 0) -> np.ndarray:
    """``(n, rows, columns)`` int16 HU: air, a body with fat and soft tissue, two 'lungs'.

    Deterministic noise makes every voxel distinct enough that a flip or a transpose of the
    array is always detected.
    """
    rng = np.random.default_rng(seed)
    volume = np.full((n, rows, columns), -1000, dtype=np.int16)
    volume[:, 3:-3, 3:-3] = -100  # fat
    volume[:, 6:-6, 6:-6] = 40  # soft tissue
    volume[:, 9:-9, 8 : columns // 2 - 2] = -850  # right lung (image left)
    volume[:, 9:-9, columns // 2 + 2 : -8] = -860  # left lung
    volume += rng.integers(-15, 16, size=volume.shape, dtype=np.int16)
    return volume


def write(folder: Path, volume: np.ndarray | None = None, **kwargs) -> list[Path]:
    """Write ``volume`` (default :func:`phantom`) as a CT series into ``folder``."""
    kwargs.setdefault("spacing", SPACING)
    kwargs.setdefault("study_uid", STUDY_UID)
    return write_ct_series(phantom() if volume is None else volume, folder=folder, **kwargs)


def source_world(shape, spacing, orientation, origin=(0.0, 0.0, 0.0), slice_direction=None) -> np.ndarray:
    """LPS position (mm) of every voxel of a series written by ``write_ct_series``: ``(N*R*C, 3)``."""
    from pneumolens.io.dicom_write import ORIENTATIONS

    iop = np.asarray(ORIENTATIONS[orientation] if isinstance(orientation, str) else orientation, dtype=float)
    row_dir, col_dir = iop[:3], iop[3:]
    step = np.cross(row_dir, col_dir) if slice_direction is None else np.asarray(slice_direction, dtype=float)
    step = step / np.linalg.norm(step)
    s, r, c = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    world = (
        np.asarray(origin, dtype=float)
        + s.reshape(-1, 1) * spacing[0] * step
        + r.reshape(-1, 1) * spacing[1] * col_dir
        + c.reshape(-1, 1) * spacing[2] * row_dir
    )
    return world


def assert_same_voxels(scan, volume: np.ndarray, world: np.ndarray) -> None:
    """Every source voxel, placed by its LPS position through ``scan.affine``, holds the same HU."""
    homogeneous = np.c_[world, np.ones(len(world))]
    index = np.linalg.solve(scan.affine, homogeneous.T)[:3].T
    rounded = np.rint(index)
    np.testing.assert_allclose(index, rounded, atol=1e-4)  # the affine lands on voxel centres
    k, j, i = rounded.astype(int).T
    assert scan.volume.dtype == np.int16
    np.testing.assert_array_equal(scan.volume[k, j, i], volume.reshape(-1))


def encode_jpeg_lossless_sv1(frame: np.ndarray) -> bytes:
    """Encode a 16-bit unsigned frame as JPEG Lossless, process 14, selection value 1 (ITU T.81 H).

    pydicom has no encoder for this transfer syntax; this minimal one (one component, one fixed
    Huffman table with 5-bit codes for the 17 difference categories) lets the tests write
    JPEG-Lossless series like P002's and check that the reader decodes them exactly.
    """
    frame = np.asarray(frame, dtype=np.uint16)
    rows, columns = frame.shape
    x = frame.astype(np.int64)
    prediction = np.empty_like(x)
    prediction[0, 0] = 1 << 15  # 2^(P - Pt - 1)
    prediction[0, 1:] = x[0, :-1]  # first line: left neighbour
    prediction[1:, 0] = x[:-1, 0]  # first column: the sample above
    prediction[1:, 1:] = x[1:, :-1]  # selection value 1: left neighbour
    difference = (x - prediction) % 65536
    difference[difference > 32768] -= 65536

    bits: list[str] = []
    for d in difference.ravel().tolist():
        category = 16 if d == 32768 else abs(d).bit_length()
        bits.append(format(category, "05b"))  # canonical code of symbol `category`
        if 0 < category < 16:
            value = d if d >= 0 else d - 1 + (1 << category)
            bits.append(format(value, f"0{category}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)  # pad with 1-bits
    data = bytearray()
    for i in range(0, len(stream), 8):
        byte = int(stream[i : i + 8], 2)
        data.append(byte)
        if byte == 0xFF:
            data.append(0x00)  # byte stuffing

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload

    counts = bytes([0, 0, 0, 0, 17] + [0] * 11)  # 17 codes of length 5
    return (
        b"\xff\xd8"
        + segment(0xC3, bytes([16]) + rows.to_bytes(2, "big") + columns.to_bytes(2, "big") + bytes([1, 1, 0x11, 0]))
        + segment(0xC4, bytes([0x00]) + counts + bytes(range(17)))
        + segment(0xDA, bytes([1, 1, 0x00, 1, 0, 0]))  # Ss=1 (predictor), Se=0, Ah/Al=0
        + bytes(data)
        + b"\xff\xd9"
    )
