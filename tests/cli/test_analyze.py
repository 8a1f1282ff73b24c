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
    assert data["schema_version"] == "1.2"
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
    # lobes: per-lobe block, scores, per-slice lobe counts, lobes.nii.gz, report table
    lobe_names = ["RUL", "RML", "RLL", "LUL", "LLL"]
    assert list(data["lobes"]) == lobe_names and data["region_map"]["kind"] == "lobes"
    assert sum(data["lobes"][n]["lesion_ml"] for n in lobe_names) == pytest.approx(data["lesions"]["volume_ml"], abs=0.1)
    assert data["scores"]["ct_severity_0_25"] == sum(data["lobes"][n]["score"] for n in lobe_names)
    assert all(set(s["lobes"]) == set(lobe_names) for s in data["slices"])
    assert sum(sum(s["lobes"].values()) for s in data["slices"]) == sum(s["lesion_voxels"] for s in data["slices"])
    lobes = np.asarray(nib.load(str(out / "lobes.nii.gz")).dataobj)
    lungs = np.asarray(nib.load(str(out / "lungs.nii.gz")).dataobj)
    assert np.array_equal(lobes > 0, lungs > 0) and set(np.unique(lobes)) == {0, 1, 2, 3, 4, 5}
    assert data["outputs"]["lobes_mask"] == "lobes.nii.gz"
    assert "CT severity" in html and "RML" in html


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
        (["--weights", "lesion_unet2d_nope"], "or a shipped name (lesion_unet2d, lesion_unet2d_allpatients"),
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


def _toy_lobes(lung_labels: np.ndarray) -> np.ndarray:
    """Right lung cut in 3 along z, left in 2 (pneumolens labels): a stand-in external lobe map."""
    out = np.zeros(lung_labels.shape, dtype=np.uint8)
    z = np.arange(lung_labels.shape[0])[:, None, None]
    for side, labels in ((1, (3, 2, 1)), (2, (5, 4))):
        zs = np.flatnonzero((lung_labels == side).any(axis=(1, 2)))
        edges = np.linspace(zs[0], zs[-1] + 1, len(labels) + 1)
        for lab, lo, hi in zip(labels, edges[:-1], edges[1:]):
            out[(lung_labels == side) & (z >= lo) & (z < hi)] = lab
    return out


@pytest.fixture(scope="module")
def lobe_file(phantom_file, tmp_path_factory):
    from pneumolens.export.nifti import write_mask_nifti
    from pneumolens.io import load_scan

    phantom, path = phantom_file
    affine = load_scan(path).affine
    folder = tmp_path_factory.mktemp("lobes")
    lobes = _toy_lobes(phantom.lung_labels)
    lungmask = np.select([lobes == 4, lobes == 5, lobes == 1, lobes == 2, lobes == 3], [1, 2, 3, 4, 5], 0)
    return {
        "good": write_mask_nifti(lungmask.astype(np.uint8), affine, folder / "ltrc.nii.gz"),
        "cropped": write_mask_nifti(lobes[:, :, 2:], affine, folder / "cropped.nii.gz"),
        "mirrored": write_mask_nifti(lobes[:, :, ::-1].copy(), affine, folder / "mirrored.nii.gz"),
        "lobes": lobes,
    }


def test_external_lobes_and_zones(phantom_file, lobe_file, tmp_path):
    _, path = phantom_file
    out = tmp_path / "ext"
    assert main(["analyze", str(path), "--out", str(out), "--method", "density", "--no-progress",
                 "--lobes", str(lobe_file["good"])]) == 0
    data = json.loads((out / "analysis.json").read_text())
    assert data["region_map"]["method"] == "external:lungmask:ltrc.nii.gz"
    lobes = np.asarray(nib.load(str(out / "lobes.nii.gz")).dataobj).transpose(2, 1, 0)
    inside = lobes > 0
    assert (lobes[inside] == lobe_file["lobes"][inside]).mean() > 0.95
    zones = tmp_path / "zones"
    assert main(["analyze", str(path), "--out", str(zones), "--method", "density", "--no-progress",
                 "--regions", "zones"]) == 0
    data = json.loads((zones / "analysis.json").read_text())
    assert list(data["zones"]) == ["right_upper", "right_middle", "right_lower", "left_upper", "left_middle",
                                   "left_lower"]
    assert data["scores"]["ct_severity_0_25"] is None and (zones / "zones.nii.gz").is_file()


@pytest.mark.parametrize(
    "which, extra, message",
    [
        ("cropped", [], "grid"),
        ("mirrored", ["--lobes-convention", "pneumolens"], "does not match"),
        ("good", ["--regions", "zones"], "--lobes was given with --regions zones"),
        ("missing", [], "does not exist"),
    ],
)
def test_bad_lobe_files_exit_2_without_output(phantom_file, lobe_file, tmp_path, capsys, which, extra, message):
    _, path = phantom_file
    out = tmp_path / "out"
    lobes = lobe_file.get(which, tmp_path / "absent.nii.gz")
    code = main(["analyze", str(path), "--out", str(out), "--method", "density", "--no-progress",
                 "--lobes", str(lobes), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not out.exists()
