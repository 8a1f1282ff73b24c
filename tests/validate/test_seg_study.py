"""evaluate-seg: folders of NIfTI and PNG masks, through the CLI and the library."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
from PIL import Image

from pneumolens.cli import main
from pneumolens.validate.seg_study import evaluate_folders


def _nifti(path: Path, mask: np.ndarray, zooms=(0.8, 0.8, 2.0)) -> None:
    affine = np.diag([*zooms, 1.0])
    nibabel.save(nibabel.Nifti1Image(mask.astype(np.uint8), affine), str(path))


def _png(path: Path, mask: np.ndarray) -> None:
    Image.fromarray(mask.astype(np.uint8)).save(path)


@pytest.fixture()
def nifti_dirs(tmp_path: Path) -> tuple[Path, Path]:
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir(), truth.mkdir()
    t = np.zeros((24, 24, 12), np.uint8)
    t[4:14, 4:14, 2:8] = 1
    t[16:20, 16:20, 2:8] = 2
    p = np.zeros_like(t)
    p[6:16, 4:14, 2:8] = 1  # label 1 shifted 2 voxels (1.6 mm) along the first axis
    p[16:20, 16:20, 2:8] = 2
    _nifti(truth / "case1.nii.gz", t), _nifti(pred / "case1.nii.gz", p)
    _nifti(truth / "case2.nii.gz", t), _nifti(pred / "case2.nii.gz", t)
    _nifti(truth / "case3.nii.gz", np.zeros_like(t))  # truth without prediction
    return pred, truth


def test_nifti_labels_and_spacing(nifti_dirs):
    study = evaluate_folders(*nifti_dirs, labels=[1, 2])
    by = {(c.name, c.label): c.metrics for c in study.cases}
    assert by[("case1", "1")].dice == pytest.approx(2 * 480 / 1200)
    assert by[("case1", "1")].hd95 == pytest.approx(1.6)  # 2 voxels x 0.8 mm
    assert by[("case1", "2")].dice == 1.0
    assert study.only_truth == ("case3",)
    assert study.summary["1"]["dice"].n == 2
    assert study.summary["1"]["dice"].mean == pytest.approx((0.8 + 1.0) / 2)


def test_cli_writes_tables(nifti_dirs, tmp_path):
    pred, truth = nifti_dirs
    out = tmp_path / "seg_out"
    assert (
        main(
            [
                "evaluate-seg",
                "--pred",
                str(pred),
                "--truth",
                str(truth),
                "--label",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((out / "per_case.csv").open()))
    assert [r["case"] for r in rows] == ["case1", "case2"]
    assert float(rows[0]["dice"]) == pytest.approx(0.8)
    report = json.loads((out / "seg_report.json").read_text())
    assert report["only_truth"] == ["case3"]
    assert report["summary"]["1"]["hd95"]["n"] == 2
    assert "Median [IQR]" in (out / "summary.md").read_text()


def test_cli_strict_missing_prediction_is_exit_2(nifti_dirs, tmp_path, capsys):
    pred, truth = nifti_dirs
    rc = main(
        [
            "evaluate-seg",
            "--pred",
            str(pred),
            "--truth",
            str(truth),
            "--strict",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
    assert "1 truth file(s) without prediction" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_png_pairs_and_empty_truth(tmp_path):
    pred, truth = tmp_path / "p", tmp_path / "t"
    pred.mkdir(), truth.mkdir()
    m = np.zeros((32, 32), np.uint8)
    m[8:24, 8:24] = 255
    _png(truth / "a.png", m), _png(pred / "a.png", m)
    _png(truth / "b.png", np.zeros_like(m)), _png(pred / "b.png", np.zeros_like(m))
    study = evaluate_folders(pred, truth, spacing=(0.5, 0.5))
    by = {c.name: c.metrics for c in study.cases}
    assert by["a"].dice == 1.0 and by["a"].hd95 == 0.0
    assert by["b"].empty == "both" and by["b"].dice == 1.0
    assert np.isnan(by["b"].sensitivity)


def test_no_pairs_is_exit_2(tmp_path, capsys):
    (tmp_path / "p").mkdir(), (tmp_path / "t").mkdir()
    rc = main(
        [
            "evaluate-seg",
            "--pred",
            str(tmp_path / "p"),
            "--truth",
            str(tmp_path / "t"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
    assert "no prediction/truth pair found" in capsys.readouterr().err


def test_grid_mismatch_is_exit_2(tmp_path, capsys):
    pred, truth = tmp_path / "p", tmp_path / "t"
    pred.mkdir(), truth.mkdir()
    m = np.ones((4, 4, 4), np.uint8)
    _nifti(truth / "x.nii", m), _nifti(pred / "x.nii", m, zooms=(1.0, 1.0, 1.0))
    assert (
        main(
            [
                "evaluate-seg",
                "--pred",
                str(pred),
                "--truth",
                str(truth),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "different grids" in capsys.readouterr().err
