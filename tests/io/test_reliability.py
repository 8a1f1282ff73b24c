"""Issue 10, reading side: each hostile input of the table is refused with the file named, or read
correctly. Built from the real P002 series (JPEG Lossless) bundled in ``examples/``: a few
consecutive slices where the rule does not need the whole series."""

from __future__ import annotations

import random
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pneumolens.errors import InputError
from pneumolens.io import archive, load_scan
from pneumolens.tempfiles import MARKER, clean_stale, make_marked_dir, marked_temp_dir

REPO = Path(__file__).resolve().parents[2]
P002 = REPO / "examples" / "covid_ct_md_P002" / "dicom"
#: Eight consecutive slices through the middle of the lungs.
NAMES = [f"IM{k:04d}.dcm" for k in range(60, 68)]


def p002_slices(folder: Path, names=NAMES, **edits) -> list[Path]:
    """Copy P002 slices into ``folder``; ``edits[name] = callable(ds)`` changes a header."""
    import pydicom

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        target = folder / name
        if name in edits:
            ds = pydicom.dcmread(P002 / name)
            edits[name](ds)
            ds.save_as(target)
        else:
            shutil.copy(P002 / name, target)
        paths.append(target)
    return paths


def _set(keyword, value):
    def edit(ds):
        setattr(ds, keyword, value)

    return edit


def _delete(keyword):
    def edit(ds):
        delattr(ds, keyword)

    return edit


def test_the_unchanged_slices_are_read(tmp_path):
    scan = load_scan(p002_slices(tmp_path / "s")[0].parent)
    assert scan.shape == (8, 512, 512)
    assert scan.spacing == pytest.approx((2.0, 0.603515625, 0.603515625))


def test_one_slice_with_another_pixel_spacing_is_refused_by_name(tmp_path):
    folder = tmp_path / "s"
    p002_slices(folder, **{"IM0063.dcm": _set("PixelSpacing", [0.9, 0.9])})
    with pytest.raises(InputError, match=r"PixelSpacing differs between slices: 1 of 8 image\(s\) \(IM0063\.dcm\) have 0\.9x0\.9 mm"):
        load_scan(folder)


def test_every_other_slice_with_another_pixel_spacing_is_refused_by_name(tmp_path):
    folder = tmp_path / "s"
    p002_slices(folder, **{name: _set("PixelSpacing", [0.7, 0.7]) for name in NAMES[::2]})
    with pytest.raises(InputError, match=r"PixelSpacing differs between slices: 4 of 8 image\(s\) \(IM00\d\d\.dcm"):
        load_scan(folder)


def test_pixel_spacing_rounded_differently_is_the_same_spacing(tmp_path):
    """DS rounding (0.603515625 written as 0.6035156) moves the far edge by 0.0001 pixel."""
    folder = tmp_path / "s"
    p002_slices(folder, **{"IM0063.dcm": _set("PixelSpacing", ["0.6035156", "0.6035156"])})
    assert load_scan(folder).shape == (8, 512, 512)


@pytest.mark.parametrize("keyword", ["RescaleIntercept", "RescaleSlope"])
def test_a_slice_without_rescale_is_refused_by_name_never_defaulted(tmp_path, keyword):
    folder = tmp_path / "s"
    p002_slices(folder, **{"IM0062.dcm": _delete(keyword)})
    with pytest.raises(InputError, match=rf"{keyword} is missing or unreadable in 1 of 8 image\(s\) \(IM0062\.dcm\)"):
        load_scan(folder)


@pytest.mark.parametrize("slope", ["0", "-1", "1e9"])
def test_an_insane_rescale_slope_is_refused_by_name(tmp_path, slope):
    folder = tmp_path / "s"
    p002_slices(folder, **{"IM0064.dcm": _set("RescaleSlope", slope)})
    with pytest.raises(InputError, match=r"RescaleSlope is .* in 1 image\(s\) \(IM0064\.dcm\)"):
        load_scan(folder)


def test_another_image_size_is_refused_by_name(tmp_path):
    folder = tmp_path / "s"
    p002_slices(folder, **{"IM0061.dcm": _set("Rows", 256)})
    with pytest.raises(InputError, match=r"the slices differ in size: 1 of 8 image\(s\) are not 512x512 pixels, e\.g\. IM0061\.dcm"):
        load_scan(folder)


def test_a_slightly_rotated_slice_is_refused_by_name(tmp_path):
    folder = tmp_path / "s"
    p002_slices(folder, **{"IM0065.dcm": _set("ImageOrientationPatient", [1, 0, 0, 0, 0.99, 0.14])})
    with pytest.raises(InputError, match=r"ImageOrientationPatient differs between slices: 1 of 8 image\(s\) \(IM0065\.dcm\)"):
        load_scan(folder)


def test_a_garbled_image_position_names_the_file(tmp_path):
    folder = tmp_path / "s"
    p002_slices(folder)
    path = folder / "IM0064.dcm"
    data = bytearray(path.read_bytes())
    at = data.index(b"\x20\x00\x32\x00")  # (0020,0032) ImagePositionPatient, explicit VR LE
    length = int.from_bytes(data[at + 6 : at + 8], "little")
    data[at + 8 : at + 8 + length] = b"x\\y\\z".ljust(length)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"lack ImagePositionPatient in 1 of 8 image\(s\) \(IM0064\.dcm: missing or unreadable\)"):
        load_scan(folder)


def _garble_pixels(path: Path, seed: int, n_bytes: int = 4) -> None:
    rng = random.Random(seed)
    data = bytearray(path.read_bytes())
    start = data.rfind(b"\xe0\x7f\x10\x00") + 200
    for _ in range(n_bytes):
        data[rng.randrange(start, len(data) - 2)] = rng.randrange(256)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes_in_a_jpeg_lossless_slice_are_refused_by_name(tmp_path, seed):
    folder = tmp_path / "s"
    p002_slices(folder)
    _garble_pixels(folder / "IM0063.dcm", seed)
    with pytest.raises(InputError, match=r"\(IM0063\.dcm\) differs from its neighbours .*probably corrupt|IM0063\.dcm.*cannot be decoded"):
        load_scan(folder)


@pytest.mark.realdata
@pytest.mark.slow
def test_random_bytes_in_one_slice_of_the_whole_p002_series_are_refused(tmp_path):
    """The issue's case: the whole series with one damaged JPEG-Lossless slice (not only a few)."""
    folder = tmp_path / "p002"
    shutil.copytree(P002, folder)
    _garble_pixels(folder / "IM0060.dcm", seed=3, n_bytes=3)
    with pytest.raises(InputError, match=r"IM0060\.dcm"):
        load_scan(folder)


@pytest.mark.parametrize(("tag", "vr"), [(b"\x02\x00\x02\x00", b"UI"), (b"\x08\x00\x16\x00", b"UI")])
def test_a_garbled_vr_is_an_input_error_naming_the_file_or_harmless(tmp_path, tag, vr):
    """Two bytes of a VR garbled (file meta (0002,0002) or SOPClassUID (0008,0016)): pydicom raises
    on first access (exit 1 with a traceback before). The file is unreadable and named, or the
    element is not needed and the result is exactly that of the intact series."""
    folder = tmp_path / "s"
    p002_slices(folder)
    path = folder / "IM0064.dcm"
    data = bytearray(path.read_bytes())
    at = data.index(tag + vr)
    data[at + 4 : at + 6] = b"SI"  # an unknown VR
    path.write_bytes(bytes(data))
    try:
        scan = load_scan(folder)
    except InputError as exc:
        assert re.search(r"slices are missing.*could not be read: IM0064\.dcm", str(exc)), exc
    else:
        intact = load_scan(p002_slices(tmp_path / "intact")[0].parent)
        np.testing.assert_array_equal(scan.volume, intact.volume)


def _second_patient(ds):
    ds.PatientID = "SOMEONE-ELSE"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.77"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.78"


def test_two_patients_are_refused_unless_one_is_picked(tmp_path):
    folder = tmp_path / "two"
    p002_slices(folder / "a")
    p002_slices(folder / "b", **{name: _second_patient for name in NAMES})
    with pytest.raises(InputError, match=r"2 patient\(s\) and 2 study\(ies\).*series 1\.2\.826\.0\.1\.3680043\.8\.498\.78") as info:
        load_scan(folder)
    assert "SOMEONE-ELSE" not in str(info.value)
    picked = load_scan(folder, series="1.2.826.0.1.3680043.8.498.78")
    assert picked.info.series_instance_uid == "1.2.826.0.1.3680043.8.498.78"
    by_patient = load_scan(folder, patient="SOMEONE-ELSE")
    assert by_patient.info.series_instance_uid == "1.2.826.0.1.3680043.8.498.78"
    np.testing.assert_array_equal(picked.volume, load_scan(folder / "a").volume)
    with pytest.raises(InputError, match=r"no image of series 9\.9 was found"):
        load_scan(folder, series="9.9")


def test_nifti_with_nan_voxels_is_refused_by_name(tmp_path):
    import nibabel as nib

    volume = np.full((40, 40, 30), -1000.0, dtype=np.float32)
    volume[10:30, 10:30, :] = 40.0
    volume[5:8, 5:8, 5:8] = np.nan
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.diag([0.8, 0.8, 2.0, 1.0])), path)
    with pytest.raises(InputError, match=r"27 voxel\(s\) are NaN or infinite") as info:
        load_scan(path)
    assert info.value.where == str(path)


def test_a_file_far_too_big_for_its_header_is_refused_early(tmp_path):
    folder = tmp_path / "s"
    paths = p002_slices(folder)
    with open(paths[3], "ab") as f:
        f.truncate(paths[3].stat().st_size + 64 * 1024**2)  # sparse: no disk used
    with pytest.raises(InputError, match=r"the file is 6\d\.\d MiB but its header describes 0\.50 MiB") as info:
        load_scan(folder)
    assert info.value.where == "IM0063.dcm"


def test_a_large_file_of_zeros_is_not_parsed(tmp_path):
    """A forced parse of a gigabyte of zeros took minutes; it is not DICOM and is skipped at once."""
    folder = tmp_path / "s"
    p002_slices(folder)
    with open(folder / "zeros.bin", "wb") as f:
        f.truncate(1024**3)
    scan = load_scan(folder)
    assert any(s.item == "zeros.bin" and s.reason == "not a DICOM file" for s in scan.info.skipped)


def _zip(folder: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, path.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return target


def test_a_zip_bomb_member_is_refused_before_extraction(tmp_path, monkeypatch):
    folder = tmp_path / "s"
    p002_slices(folder)
    bomb = _zip(folder, tmp_path / "bomb.zip", {"IM9999.dcm": bytes(64 * 1024**2)})
    assert bomb.stat().st_size < 8 * 1024**2
    made = []
    real = archive.marked_temp_dir

    def spy(prefix):
        made.append(prefix)
        return real(prefix)

    monkeypatch.setattr(archive, "marked_temp_dir", spy)
    with pytest.raises(InputError, match=r"the zip member IM9999\.dcm expands \d+ times"):
        load_scan(bomb)
    assert made == ["pneumolens-zip-"]


def test_a_zip_announcing_more_than_a_ct_study_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "s"
    p002_slices(folder)
    monkeypatch.setattr(archive, "MAX_UNCOMPRESSED_BYTES", 1024**2)
    with pytest.raises(InputError, match=r"the zip would expand to 0\.0 GiB"):
        load_scan(_zip(folder, tmp_path / "big.zip"))


def test_a_zip_is_read_and_its_extraction_removed(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = tmp_path / "s"
    p002_slices(folder)
    scan = load_scan(_zip(folder, tmp_path / "ok.zip"))
    assert scan.shape == (8, 512, 512)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_extraction_folder_is_removed_on_an_exception(tmp_path):
    with pytest.raises(RuntimeError), marked_temp_dir("pneumolens-zip-", tmp_path) as folder:
        (folder / "slice.dcm").write_bytes(b"x")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_stale_folders_of_a_killed_run_are_removed_by_marker_and_age(tmp_path):
    import json
    import os
    import subprocess
    import sys
    import time

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    killed = make_marked_dir("pneumolens-zip-", tmp_path)
    info = json.loads((killed / MARKER).read_text())
    (killed / MARKER).write_text(json.dumps(info | {"pid": int(dead.stdout)}))
    old = make_marked_dir("pneumolens-zip-", tmp_path)
    (old / MARKER).write_text(json.dumps(info | {"created": time.time() - 3 * 24 * 3600}))
    running = make_marked_dir("pneumolens-zip-", tmp_path)  # this process: still running
    unmarked = tmp_path / "pneumolens-zip-someone-elses"
    unmarked.mkdir()
    removed = clean_stale(tmp_path, "pneumolens-zip-")
    assert sorted(removed) == sorted([killed, old])
    assert running.is_dir() and unmarked.is_dir() and os.getpid() == info["pid"]
