"""Export a trained lesion U-Net to ONNX, check it against torch, write its JSON sidecar."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import numpy as np
import torch

from pneumolens.models import preprocess, sha256_of
from pneumolens.train.config import RecipeConfig
from pneumolens.train.lesions import count_parameters, load_trained

logger = logging.getLogger(__name__)

CLASSES = {"0": "background", "1": "ground-glass opacity", "2": "consolidation"}
#: Largest tolerated |ONNX - torch| on softmax probabilities.
MAX_ABS_DIFF = 1e-4


class _Softmax(torch.nn.Module):
    """Wrap the U-Net so the ONNX graph outputs probabilities (B, 3, S, S)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def export_onnx(model: torch.nn.Module, path: Path, *, size: int, opset: int = 17) -> None:
    """Write ``model`` (logits) as an ONNX graph ``image (B,1,S,S) -> probabilities (B,3,S,S)``
    with a dynamic batch axis."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = _Softmax(model).eval()
    dummy = torch.zeros(2, 1, size, size)
    torch.onnx.export(
        wrapped,
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=["probabilities"],
        dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )


def compare_onnx_torch(model: torch.nn.Module, path: Path, *, size: int, batch: int = 3, seed: int = 0) -> float:
    """Max |ONNX - torch| of the probabilities on a random batch (another batch size than the
    export's, so the dynamic axis is exercised)."""
    import onnxruntime as ort

    x = np.random.default_rng(seed).random((batch, 1, size, size), dtype=np.float32)
    with torch.no_grad():
        ref = torch.softmax(model.eval()(torch.from_numpy(x)), dim=1).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x})[0]
    return float(np.abs(got - ref).max())


def write_sidecar(path: Path, cfg: RecipeConfig, *, parameters: int, data_summary: dict, extra: dict | None = None) -> Path:
    """Write ``<onnx>.json``: checksum, input normalisation, classes, recipe and data summary."""
    meta = {
        "name": cfg.export.name,
        "version": cfg.export.version,
        "file": path.name,
        "sha256": sha256_of(path),
        "architecture": {
            "type": "monai.networks.nets.UNet",
            "spatial_dims": 2,
            "channels": list(cfg.model.channels),
            "strides": list(cfg.model.strides),
            "num_res_units": cfg.model.num_res_units,
            "parameters": parameters,
        },
        "input": {
            "name": "image",
            "size": cfg.data.size,
            "channels": 1,
            "hu_window": list(preprocess.LUNG_WINDOW_HU),
            "clahe_clip_limit": preprocess.CLAHE_CLIP_LIMIT,
            "box_margin": preprocess.BOX_MARGIN,
            "normalisation": f"lung window {list(preprocess.LUNG_WINDOW_HU)} HU -> [0,1] (8-bit slices /255); "
            f"square lung box; resize to size; skimage CLAHE clip {preprocess.CLAHE_CLIP_LIMIT} "
            "(pneumolens.models.preprocess.prepare_slice)",
        },
        "output": {"name": "probabilities", "softmax": True},
        "classes": CLASSES,
        "exported": date.today().isoformat(),
        "training_data": data_summary,
    }
    if extra:
        meta.update(extra)
    sidecar = path.with_suffix(".json")
    sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    return sidecar


def export_recipe(cfg: RecipeConfig, checkpoint: Path) -> dict:
    """Export ``checkpoint`` to ``cfg.export.onnx`` with its sidecar; returns a small report.

    Raises
    ------
    RuntimeError
        When ONNX and torch disagree by more than :data:`MAX_ABS_DIFF`.
    """
    model = load_trained(cfg, checkpoint)
    onnx_path = cfg.onnx_path()
    export_onnx(model, onnx_path, size=cfg.data.size, opset=cfg.export.opset)
    diff = compare_onnx_torch(model, onnx_path, size=cfg.data.size)
    if diff > MAX_ABS_DIFF:
        raise RuntimeError(f"ONNX export of {checkpoint} differs from torch by {diff:.2e} > {MAX_ABS_DIFF:.0e}")
    recipe = cfg.out_dir() / "recipe.json"
    summary = json.loads(recipe.read_text())["data"] if recipe.exists() else {}
    ckpt = torch.load(checkpoint, weights_only=False)
    sidecar = write_sidecar(
        onnx_path,
        cfg,
        parameters=count_parameters(model),
        data_summary=summary,
        extra={
            "checkpoint": checkpoint.name,
            "epoch": ckpt.get("epoch"),
            "validation_during_training": ckpt.get("metrics") or (ckpt.get("history") or [{}])[-1],
        },
    )
    return {"onnx": str(onnx_path), "sidecar": str(sidecar), "max_abs_diff": diff, "bytes": onnx_path.stat().st_size}
