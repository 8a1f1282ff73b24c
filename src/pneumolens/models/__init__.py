"""Model registry: shipped ONNX weights with JSON sidecars, local weight paths, checksums.

A model is an ONNX file plus a sidecar ``<name>.json`` beside it holding at least ``sha256`` (of
the ONNX file), ``input`` (size, normalisation) and ``classes``. Shipped models live in
``pneumolens/models/weights/``; :func:`load` takes a shipped name or a path to another ONNX file
(``--weights PATH``) and verifies the checksum before any inference.

Inference uses onnxruntime only; torch is never imported here.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pneumolens.errors import ModelError

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
LESION_MODEL = "lesion_unet2d"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def available() -> list[str]:
    """Names of the shipped models (ONNX files with a sidecar)."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.onnx") if p.with_suffix(".json").exists())


def resolve(name_or_path: str | Path) -> tuple[Path, Path]:
    """ONNX and sidecar paths of a shipped model name or of an ONNX file path.

    Raises
    ------
    ModelError
        When the ONNX file or its sidecar does not exist.
    """
    text = str(name_or_path)
    path = Path(text) if (text.endswith(".onnx") or Path(text).exists()) else WEIGHTS_DIR / f"{text}.onnx"
    if not path.is_file():
        shipped = ", ".join(available()) or "none"
        raise ModelError(
            f"model weights not found: {path}. Shipped models: {shipped}. "
            "Pass a shipped name or the path of an ONNX file with its .json sidecar beside it."
        )
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise ModelError(
            f"model sidecar not found: {sidecar}. Each ONNX file needs a JSON sidecar with its sha256, "
            "input normalisation and classes (written by 'pneumolens train')."
        )
    return path, sidecar


@dataclass(frozen=True)
class Model:
    """A loaded ONNX model and its metadata.

    Attributes
    ----------
    name
        Model name from the sidecar.
    path
        ONNX file.
    meta
        The sidecar dictionary (``sha256``, ``input``, ``classes``, ``version``, ...).
    session
        The onnxruntime ``InferenceSession``.
    """

    name: str
    path: Path
    meta: dict[str, Any]
    session: Any = field(repr=False)

    @property
    def input_size(self) -> int:
        return int(self.meta["input"]["size"])

    @property
    def input_name(self) -> str:
        return self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on a float32 batch ``(B, C, S, S)``; returns its first output."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]


def load(name_or_path: str | Path = LESION_MODEL, *, threads: int = 0, verify: bool = True) -> Model:
    """Load a shipped model by name, or an ONNX file by path, after checking its SHA-256.

    Parameters
    ----------
    name_or_path
        Shipped model name (see :func:`available`) or path of an ``.onnx`` file whose sidecar
        ``.json`` sits beside it.
    threads
        onnxruntime intra-op threads (0 = onnxruntime's default).
    verify
        Check the file's SHA-256 against the sidecar (always on for users; off only in tools
        that write the sidecar).

    Raises
    ------
    ModelError
        Missing file or sidecar, checksum mismatch, or a file onnxruntime cannot load.
    """
    import onnxruntime as ort

    path, sidecar = resolve(name_or_path)
    try:
        meta = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"model sidecar {sidecar} is not valid JSON ({exc})") from None
    for key in ("sha256", "input", "classes"):
        if key not in meta:
            raise ModelError(f"model sidecar {sidecar} lacks '{key}'; re-export the model with 'pneumolens train'")
    if verify:
        actual = sha256_of(path)
        if actual != meta["sha256"]:
            raise ModelError(
                f"checksum mismatch for {path}: sidecar says {meta['sha256'][:12]}..., file is {actual[:12]}...; "
                "the weights are corrupt or were replaced. Reinstall pneumolens or re-export the model."
            )
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types; report them as ModelError
        raise ModelError(f"onnxruntime cannot load {path}: {exc}") from exc
    return Model(name=str(meta.get("name", path.stem)), path=path, meta=meta, session=session)
