"""Does the shipped lesion network do better at a larger input size? Validation blocks only.

The U-Net is fully convolutional, so the same weights can run at 224 or 256 px instead of the
192 px they were trained at (MedSeg slices are 512 px: their lung box loses detail at 192). The
ONNX file's fixed 192x192 input is made dynamic and the sidecar's ``input.size`` changed, in a
temporary folder; then the validation blocks of ``pneumolens.train.evaluate`` (Zenodo slices
1081-1257, MedSeg files 40-46; flip TTA as shipped) are scored. The test blocks are not read:
a size would be chosen here first.

Usage::

    python benchmarks/lesion_input_size.py --sizes 192 224 256 --json docs/models/lesion_unet2d_records/input_size_validation.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "pneumolens" / "models" / "weights"


def resized_model(size: int, folder: Path) -> Path:
    """A copy of the shipped lesion model whose ONNX input takes any size and whose sidecar says ``size``."""
    import onnx

    model = onnx.load(WEIGHTS / "lesion_unet2d.onnx")
    for tensor in list(model.graph.input) + list(model.graph.output):
        dims = tensor.type.tensor_type.shape.dim
        for axis, name in ((2, "height"), (3, "width")):
            dims[axis].ClearField("dim_value")
            dims[axis].dim_param = name
    del model.graph.value_info[:]  # inferred 192-px shapes of inner tensors
    onnx_path = folder / "lesion_unet2d.onnx"
    onnx.save(model, onnx_path)
    sidecar = json.loads((WEIGHTS / "lesion_unet2d.json").read_text())
    sidecar["input"]["size"] = size
    sidecar["sha256"] = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    (folder / "lesion_unet2d.json").write_text(json.dumps(sidecar, indent=1))
    return onnx_path


def main() -> None:
    from pneumolens import models
    from pneumolens.train import evaluate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 224, 256])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    keys = ("dice_binary_pooled", "pooled_ci95", "dice_binary_mean_per_slice", "dice_ggo_pooled",
            "dice_consolidation_pooled", "precision", "recall")
    results = {}
    with tempfile.TemporaryDirectory(prefix="pneumolens-size-") as tmp:
        for size in args.sizes:
            folder = Path(tmp) / str(size)
            folder.mkdir()
            model = models.load(resized_model(size, folder))
            blocks = evaluate.evaluate_training_and_validation(model, args.data, train_step=10**9)
            results[str(size)] = {name: {k: block[k] for k in keys if k in block}
                                  for name, block in blocks.items() if "validation" in name}
            print(size, json.dumps(results[str(size)]), flush=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": "lesion_unet2d (shipped)",
              "blocks": "validation only (Zenodo 1081-1257, MedSeg 40-46), flip TTA", "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
