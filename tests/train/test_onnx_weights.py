"""Reading an ONNX export back into its torch network (the start of a fine-tune)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")
pytest.importorskip("monai", reason="training needs the 'train' extra (monai)")
pytest.importorskip("onnx", reason="training needs the 'train' extra (onnx)")

from pneumolens import models
from pneumolens.errors import InputError
from pneumolens.train.config import ModelConfig, load_config
from pneumolens.train.lesions import build_model, initial_weights, train
from pneumolens.train.onnx_weights import state_dict_from_onnx

REPO = Path(__file__).resolve().parents[2]


def _torch_probabilities(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()


def test_the_shipped_weights_come_back_as_the_same_network() -> None:
    shipped = models.load("lesion_unet2d")
    arch = shipped.meta["architecture"]
    net = build_model(ModelConfig(channels=tuple(arch["channels"]), strides=tuple(arch["strides"]),
                                  num_res_units=arch["num_res_units"]))
    weights = state_dict_from_onnx(shipped.path, net)
    assert set(weights) == set(net.state_dict())
    net.load_state_dict(weights)
    x = np.random.default_rng(0).random((2, 1, 192, 192), dtype=np.float32)
    np.testing.assert_allclose(_torch_probabilities(net, x), shipped.run(x), atol=1e-4)
    # every tensor is read, none left at its random start: PReLU slopes included
    prelu = [k for k in weights if k.endswith("adn.A.weight")]
    assert len(prelu) == 12 and all(float(weights[k]) != 0.25 for k in prelu)


def test_another_architecture_is_an_input_error() -> None:
    shipped = models.load("lesion_unet2d")
    wider = build_model(ModelConfig(channels=(16, 32, 64, 128, 512)))
    with pytest.raises(InputError, match="does not match the network"):
        state_dict_from_onnx(shipped.path, wider)


def test_a_run_starts_from_an_onnx_export(tmp_path: Path) -> None:
    """A smoke run exported to ONNX seeds a second run: its weights before step 1 are the export's."""
    cfg = load_config(REPO / "configs" / "lesions_smoke.toml")
    first = dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, out_dir=str(tmp_path / "a")),
        export=dataclasses.replace(cfg.export, onnx=str(tmp_path / "a" / "a.onnx")),
    )
    from pneumolens.train.export import export_recipe

    report = export_recipe(first, train(first, progress=False))
    net = build_model(cfg.model)
    from_onnx = initial_weights(Path(report["onnx"]), net)
    from_pt = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["model"]
    for key, value in from_pt.items():
        np.testing.assert_allclose(from_onnx[key].numpy(), value.numpy(), atol=0, rtol=0, err_msg=key)
