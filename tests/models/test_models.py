"""Model registry: shipped weights, checksums, errors that say what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pneumolens import models
from pneumolens.errors import ModelError
from pneumolens.models import preprocess as pp


@pytest.fixture()
def copied_model(tmp_path: Path) -> Path:
    onnx_path, sidecar = models.resolve(models.LESION_MODEL)
    shutil.copy(onnx_path, tmp_path / "m.onnx")
    shutil.copy(sidecar, tmp_path / "m.json")
    return tmp_path / "m.onnx"


def test_shipped_lesion_model_is_listed_and_loads() -> None:
    assert models.LESION_MODEL in models.available()
    m = models.load(models.LESION_MODEL, threads=1)
    assert m.meta["classes"] == {"0": "background", "1": "ground-glass opacity", "2": "consolidation"}
    s = m.input_size
    prob = m.run(np.zeros((2, 1, s, s), np.float32))
    assert prob.shape == (2, 3, s, s)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-5)


def test_sidecar_checksum_matches_file() -> None:
    onnx_path, sidecar = models.resolve(models.LESION_MODEL)
    assert json.loads(sidecar.read_text())["sha256"] == models.sha256_of(onnx_path)


def test_load_by_path(copied_model: Path) -> None:
    assert models.load(copied_model, threads=1).path == copied_model


def test_corrupt_weights_raise(copied_model: Path) -> None:
    data = bytearray(copied_model.read_bytes())
    data[len(data) // 2] ^= 0x01
    copied_model.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        models.load(copied_model)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda onnx, side: onnx.unlink(), "weights not found"),
        (lambda onnx, side: side.unlink(), "sidecar not found"),
        (lambda onnx, side: side.write_text("{"), "not valid JSON"),
        (lambda onnx, side: side.write_text(json.dumps({"sha256": "0"})), "lacks 'input'"),
    ],
)
def test_bad_model_files_raise(copied_model: Path, edit, message: str) -> None:
    edit(copied_model, copied_model.with_suffix(".json"))
    with pytest.raises(ModelError, match=message):
        models.load(copied_model)


def test_unknown_name_lists_shipped_models() -> None:
    with pytest.raises(ModelError, match="Shipped models: .*lesion_unet2d"):
        models.load("no_such_model")


def _edit_sidecar(onnx: Path, **input_changes) -> None:
    sidecar = onnx.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    for key, value in input_changes.items():
        if value is ...:
            meta["input"].pop(key)
        else:
            meta["input"][key] = value
    sidecar.write_text(json.dumps(meta))


def test_sidecar_drives_preprocessing(copied_model: Path) -> None:
    _edit_sidecar(copied_model, hu_window=[-1000.0, 0.0], box_margin=0.1, clahe_clip_limit=None)
    prep = models.load(copied_model).preprocessing
    assert prep.hu_window == (-1000.0, 0.0) and prep.box_margin == 0.1 and prep.clahe_clip_limit is None
    assert models.load(models.LESION_MODEL).preprocessing == pp.Preprocessing()  # the shipped recipe


def test_weights_with_a_different_window_are_fed_with_their_window(copied_model: Path, monkeypatch) -> None:
    """Other weights trained on another HU window get inputs in that window, not the shipped one."""
    from pneumolens.lesions.model import predict_lesions_model
    from pneumolens.masks import LungMasks
    from pneumolens.synthetic import make_chest_phantom

    window = (-1000.0, 200.0)
    _edit_sidecar(copied_model, hu_window=list(window))
    model = models.load(copied_model, threads=1)
    seen: list[np.ndarray] = []
    monkeypatch.setattr(models.Model, "run", lambda self, batch: seen.append(batch) or np.zeros(
        (batch.shape[0], 3) + batch.shape[2:], np.float32))
    ph = make_chest_phantom(shape=(8, 96, 96), spacing=(5.0, 3.5, 3.5), seed=1)
    lungs = LungMasks(ph.lung_labels, ph.airways)
    predict_lesions_model(ph.volume, ph.spacing, lungs, weights=model)
    z = int(np.flatnonzero(lungs.union.any(axis=(1, 2)))[0])
    box = pp.square_box(lungs.union[z:], margin=pp.BOX_MARGIN)
    expected = pp.prepare_slice(pp.window_hu(ph.volume[z], window), box, model.input_size)
    shipped = pp.prepare_slice(pp.window_hu(ph.volume[z], pp.LUNG_WINDOW_HU), box, model.input_size)
    np.testing.assert_allclose(seen[0][0, 0], expected, atol=1e-6)
    assert np.abs(seen[0][0, 0] - shipped).max() > 0.05


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hu_window": ...}, "lacks input.hu_window"),
        ({"clahe_clip_limit": ..., "box_margin": ...}, "lacks input.box_margin, input.clahe_clip_limit"),
        ({"zscore": True}, "cannot apply \\(zscore\\)"),
        ({"channels": 3}, "channels is 3"),
        ({"hu_window": [150, -1350]}, "low < high"),
    ],
)
def test_sidecar_the_model_cannot_be_fed_as_trained_is_refused(copied_model: Path, changes, message) -> None:
    _edit_sidecar(copied_model, **changes)
    with pytest.raises(ModelError, match=message):
        models.load(copied_model)


def test_a_loaded_model_is_cached_per_process(copied_model: Path) -> None:
    first = models.load(copied_model, threads=1)
    assert models.load(copied_model, threads=1) is first
    assert models.load(copied_model, threads=2) is not first
    _edit_sidecar(copied_model, box_margin=0.08)  # a changed file is read again
    assert models.load(copied_model, threads=1).preprocessing.box_margin == 0.08
    models.clear_cache()
    assert models.load(models.LESION_MODEL) is models.load(models.LESION_MODEL)
