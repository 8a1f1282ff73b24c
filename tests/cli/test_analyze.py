import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from pneumolens.cli import main
from pneumolens.synthetic import make_chest_phantom, make_head_phantom


def _write_nrrd(volume: np.ndarray, spacing, path):
    image = sitk.GetImageFromArray(volume)  # array (z, y, x) -> ITK (x, y, z)
    image.SetSpacing((spacing[2], spacing[1], spacing[0]))
    sitk.WriteImage(image, str(path), True)
    return path


@pytest.fixture(scope="module")
def phantom_file(tmp_path_factory):
    p = make_chest_phantom(seed=1)
    return p, _write_nrrd(p.volume, p.spacing, tmp_path_factory.mktemp("in") / "chest.nrrd")


def test_analyze_writes_the_contract(phantom_file, tmp_path, capsys):
    phantom, path = phantom_file
    out = tmp_path / "out"
    assert main(["analyze", str(path), "--out", str(out), "--method", "density", "--json", "--no-progress"]) == 0
    data = json.loads((out / "analysis.json").read_text())
    assert json.loads(capsys.readouterr().out) == data  # --json prints the same document
    assert data["schema_version"] == "1.1"
    for key in ("path", "series_instance_uid", "n_slices", "spacing_mm", "manufacturer", "patient_sex",
                "patient_age", "skipped"):
        assert key in data["input"]
    assert data["input"]["n_slices"] == phantom.volume.shape[0] == len(data["slices"])
    assert data["input"]["spacing_mm"] == pytest.approx(list(phantom.spacing))
    assert data["lungs"]["total_ml"] == pytest.approx(data["lungs"]["left_ml"] + data["lungs"]["right_ml"], abs=0.2)
    assert data["lesions"]["method"] == "density"
    assert data["lesions"]["volume_ml"] > 0
    assert data["lesions"]["volume_ml"] == pytest.approx(
        data["lesions"]["ggo_ml"] + data["lesions"]["consolidation_ml"], abs=0.05)
    assert {"z_mm", "lung_voxels", "lesion_voxels"} <= set(data["slices"][0])
    assert sum(s["lesion_voxels"] for s in data["slices"]) > 0
    assert set(data["timings_s"]) >= {"read", "lungs", "lesions", "findings"}
    # masks come back on the input's grid and agree with the JSON
    lesions = np.asarray(nib.load(str(out / "lesions.nii.gz")).dataobj)
    assert lesions.shape == phantom.volume.shape[::-1]
    voxel_ml = float(np.prod(phantom.spacing)) / 1000
    assert np.count_nonzero(lesions) * voxel_ml == pytest.approx(data["lesions"]["volume_ml"], abs=0.05)
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "consolidation" in html


def test_no_lungs_exit_code_2_and_no_output(tmp_path, capsys):
    p = make_head_phantom()
    path = _write_nrrd(p.volume, p.spacing, tmp_path / "head.nrrd")
    out = tmp_path / "out"
    assert main(["analyze", str(path), "--out", str(out), "--method", "density", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "No lungs" in err or "no lungs" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_refuses_non_empty_out(phantom_file, tmp_path, capsys):
    _, path = phantom_file
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["analyze", str(path), "--out", str(out), "--method", "density"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "x"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "density", "--weights", "{weights}"], "uses no weights"),
        (["--weights", "{missing}"], "weights file does not exist"),
    ],
)
def test_weights_flag_errors(phantom_file, tmp_path, capsys, extra, message):
    _, path = phantom_file
    weights = tmp_path / "w.onnx"
    weights.write_bytes(b"not onnx")
    extra = [e.format(weights=weights, missing=tmp_path / "nope.onnx") for e in extra]
    assert main(["analyze", str(path), "--out", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _copied_weights(tmp_path, **input_changes):
    import shutil

    from pneumolens import models

    onnx, sidecar = models.resolve(models.LESION_MODEL)
    target = tmp_path / "other.onnx"
    shutil.copy(onnx, target)
    meta = json.loads(sidecar.read_text())
    meta["input"].update(input_changes)
    target.with_suffix(".json").write_text(json.dumps(meta))
    return target


def test_weights_with_another_window_run_with_that_window(phantom_file, tmp_path, capsys):
    """--weights whose sidecar says another HU window: the analysis runs, fed in that window, and
    gives other lesions than the shipped weights with the shipped window."""
    _, path = phantom_file
    other = _copied_weights(tmp_path, hu_window=[-1000.0, 0.0])
    args = ["analyze", str(path), "--no-progress", "--threads", "1"]
    assert main([*args, "--out", str(tmp_path / "shipped")]) == 0
    assert main([*args, "--weights", str(other), "--out", str(tmp_path / "other")]) == 0
    shipped = nib.load(tmp_path / "shipped" / "lesions.nii.gz").get_fdata()
    windowed = nib.load(tmp_path / "other" / "lesions.nii.gz").get_fdata()
    assert json.loads((tmp_path / "other" / "analysis.json").read_text())["lesions"]["method"] == "model:lesion_unet2d"
    assert not np.array_equal(shipped, windowed)


def test_weights_that_cannot_be_fed_as_trained_exit_3(phantom_file, tmp_path, capsys):
    _, path = phantom_file
    other = _copied_weights(tmp_path, zscore=True)
    out = tmp_path / "o"
    assert main(["analyze", str(path), "--weights", str(other), "--out", str(out), "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "model error" in err and "zscore" in err and "Traceback" not in err
    assert not out.exists()
