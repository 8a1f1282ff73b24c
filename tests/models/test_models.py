"""Model registry: shipped weights, checksums, errors that say what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pneumolens import models
from pneumolens.errors import ModelError


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
