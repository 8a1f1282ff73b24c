"""``pneumolens segment-slices``: masks per image + CSV, clear errors, no partial output."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pneumolens.cli import main
from pneumolens.models.preprocess import window_hu
from pneumolens.synthetic import make_chest_phantom


@pytest.fixture(scope="module")
def slices_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("slices")
    ph = make_chest_phantom(shape=(16, 128, 128), spacing=(5.0, 2.6, 2.6), seed=5)
    for z, suffix in ((4, ".png"), (8, ".jpg"), (12, ".png")):
        Image.fromarray((window_hu(ph.volume[z]) * 255).astype(np.uint8)).save(folder / f"s{z:02d}{suffix}")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_writes_mask_per_image_and_csv(slices_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["segment-slices", str(slices_dir), "--out", str(out)]) == 0
    with (out / "lesions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == ["s04.png", "s08.jpg", "s12.png"]
    for row in rows:
        mask = np.asarray(Image.open(out / row["mask"]))
        assert mask.shape == (128, 128) and set(np.unique(mask)) <= {0, 1, 2}
        assert int(row["ggo_px"]) == int((mask == 1).sum())
        assert int(row["consolidation_px"]) == int((mask == 2).sum())
        assert int(row["lesion_px"]) == int(row["ggo_px"]) + int(row["consolidation_px"])
    assert not list(tmp_path.glob(".segment-slices-*"))  # temp folder renamed, not left behind
    assert [r["crop"] for r in rows] == ["lungs"] * 3  # whole axial slices: boxed by their lungs


def test_crop_whole_takes_every_image_as_it_is(slices_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["segment-slices", str(slices_dir), "--out", str(out), "--crop", "whole", "--no-tta"]) == 0
    with (out / "lesions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["crop"] for r in rows] == ["whole"] * 3
    assert all(np.asarray(Image.open(out / r["mask"])).shape == (128, 128) for r in rows)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d, o: None, "no PNG/JPG images"),
        (lambda d, o: (o.mkdir(), (o / "x").write_text("x")), "output folder is not empty"),
        (lambda d, o: ((d / "a.png").write_bytes(b"x"), (d / "a.jpg").write_bytes(b"x")), "share a name stem"),
    ],
)
def test_bad_input_exit_code_2(tmp_path: Path, capsys, setup, message: str) -> None:
    images, out = tmp_path / "imgs", tmp_path / "out"
    images.mkdir()
    setup(images, out)
    if message == "output folder is not empty":
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(images / "a.png")
    assert main(["segment-slices", str(images), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err


def test_unreadable_image_leaves_no_output(tmp_path: Path, capsys) -> None:
    images, out = tmp_path / "imgs", tmp_path / "out"
    images.mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(images / "a.png")
    (images / "b.png").write_bytes(b"not a png")
    assert main(["segment-slices", str(images), "--out", str(out)]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".segment-slices-*"))


def test_weights_by_shipped_name_are_used_and_recorded(slices_dir: Path, tmp_path: Path) -> None:
    """``--weights NAME`` runs another shipped lesion model; lesions.csv says which model made it."""
    from pneumolens import models

    rows = {}
    for weights in ([], ["--weights", "lesion_unet2d_allpatients"]):
        out = tmp_path / f"out{len(weights)}"
        assert main(["segment-slices", str(slices_dir), "--out", str(out), *weights]) == 0
        with (out / "lesions.csv").open() as f:
            rows[len(weights)] = list(csv.DictReader(f))
    default = models.load(models.LESION_MODEL).meta["version"]
    assert {r["model"] for r in rows[0]} == {f"lesion_unet2d {default}"}
    assert {r["model"] for r in rows[2]} == {"lesion_unet2d_allpatients 0.3.0"}
    assert [r["max_probability"] for r in rows[0]] != [r["max_probability"] for r in rows[2]]
