"""Kernel ranking and age parsing used when choosing and describing a series."""

from __future__ import annotations

import pytest

from pneumolens.io.dicom_read import parse_age, to_hu
from pneumolens.io.dicom_series import kernel_sharpness


@pytest.mark.parametrize(
    ("kernel", "score"),
    [
        ("B70f", 2), ("B60f", 2), ("Br64", 2), ("I70f\\3", 2), ("LUNG", 2), ("L", 2), ("YC", 2), ("FC51", 2),
        ("FC86", 2), ("B50f", 1), ("BONE", 1), ("BONEPLUS", 1), ("D", 1),
        ("B30f", 0), ("Br38f\\3", 0), ("STANDARD", 0), ("SOFT", 0), ("FC07", 0), ("B", 0), ("D40s", 0),
        (None, 0), ("", 0),
    ],
)
def test_kernel_sharpness(kernel, score):
    assert kernel_sharpness(kernel) == score


@pytest.mark.parametrize(
    ("value", "years"),
    [("045Y", 45), ("45", 45), ("006M", 0.5), ("052W", 0.997), ("365D", 0.999), ("", None), ("abc", None), (None, None)],
)
def test_parse_age(value, years):
    assert parse_age(value) == (pytest.approx(years, abs=1e-3) if years is not None else None)


def test_to_hu_rounds_and_clips():
    import numpy as np

    stored = np.array([0, 1, 3, 65535], dtype=np.uint16)
    np.testing.assert_array_equal(to_hu(stored, 0.5, -1024.25), [-1024, -1024, -1023, 31743])
    np.testing.assert_array_equal(to_hu(np.array([40000], dtype=np.uint16), 1.0, 0.0), [32767])
    assert to_hu(stored, 1.0, -1024.0).dtype == np.int16
