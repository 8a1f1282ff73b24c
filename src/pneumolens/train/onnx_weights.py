"""Read a shipped ONNX export back into the torch module it came from.

The shipped weights exist only as ONNX (the training checkpoints stay on the machine that trained
them), so continuing from them - a fine-tune at another input size, say - needs their tensors
back in a ``state_dict``. ``torch.onnx.export`` keeps parameter names for convolutions
(``net.<key>``) but turns PReLU slopes into anonymous initializers (``onnx::PRelu_153``); those
are matched through the name of the node that consumes them, which carries the module path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pneumolens.errors import InputError

__all__ = ["state_dict_from_onnx"]


def _module_key(node_name: str, prefix: str) -> str:
    """``/net/model/model.1/submodule/submodule.0/conv/unit0/adn/A/PRelu`` -> ``model.1.submodule.0.conv.unit0.adn.A``.

    Scope names repeat a container's attribute before its indexed child (``submodule``,
    ``submodule.0``); the indexed child alone is the state-dict path.
    """
    parts = node_name.strip("/").split("/")[:-1]
    if parts and parts[0] == prefix:
        parts = parts[1:]
    kept = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    return ".".join(kept)


def state_dict_from_onnx(path: Path, model: torch.nn.Module, *, prefix: str = "net") -> dict[str, torch.Tensor]:
    """A ``state_dict`` for ``model`` filled from the initializers of the ONNX file at ``path``.

    Raises ``InputError`` when a tensor of ``model`` has no counterpart of the same shape: the
    file was exported from another architecture.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    tensors = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    by_key: dict[str, np.ndarray] = {}
    for name, arr in tensors.items():
        if name.startswith(prefix + "."):
            by_key[name[len(prefix) + 1:]] = arr
    for node in graph.node:
        if node.op_type == "PRelu" and node.input[1] in tensors:
            by_key[_module_key(node.name, prefix) + ".weight"] = tensors[node.input[1]]
    expected = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, ref in expected.items():
        arr = by_key.get(key)
        # PReLU slopes come back broadcastable, (1, 1, 1) for (1,): compare sizes for those
        if arr is None or (arr.shape != tuple(ref.shape) and not (key.endswith("A.weight") and arr.size == ref.numel())):
            got = "missing" if arr is None else f"shape {tuple(arr.shape)}"
            raise InputError(
                f"the ONNX file does not match the network: {key} is {got}, expected {tuple(ref.shape)}",
                where=path, todo="give the [model] section the architecture the file was exported with (its sidecar says it)",
            )
        out[key] = torch.from_numpy(np.array(arr, dtype=np.float32)).reshape(ref.shape)
    return out
