"""Model registry: shipped ONNX weights with JSON sidecars, local weight paths, checksums.

A model is an ONNX file plus a sidecar ``<name>.json`` beside it holding at least ``sha256`` (of
the ONNX file), ``input`` (size, HU window, crop margin, CLAHE: :class:`~pneumolens.models.
preprocess.Preprocessing`) and ``classes``. Shipped models live in ``pneumolens/models/weights/``;
:func:`load` takes a shipped name or a path to another ONNX file (``--weights PATH``), verifies
the checksum and the preprocessing description before any inference, so other weights are fed
as they were trained or refused with a :class:`~pneumolens.errors.ModelError`.

A loaded model is cached per process (keyed on the file, its size and modification time, and the
thread count): a service that analyses many scans loads and verifies it once.

Inference uses onnxruntime only; torch is never imported here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pneumolens.errors import ModelError
from pneumolens.models.preprocess import Preprocessing

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
    preprocessing
        How inputs are made, from the sidecar's ``input``.
    """

    name: str
    path: Path
    meta: dict[str, Any]
    session: Any = field(repr=False)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)

    @property
    def version(self) -> str:
        """The sidecar's version ("unknown" when it has none)."""
        return str(self.meta.get("version") or "unknown")

    @property
    def input_size(self) -> int:
        return self.preprocessing.size

    @property
    def input_name(self) -> str:
        return self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on a float32 batch ``(B, C, S, S)``; returns its first output."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]


#: ``input.kind`` of a sidecar: what the model is fed. ``ct_slice`` (the default when absent):
#: CT slices prepared as :class:`Preprocessing` describes (the lesion model); ``lung_mask_grid``:
#: the two lung masks on the lobe grid (:mod:`pneumolens.anatomy.lobe_grid`, the lobe model).
INPUT_KINDS = ("ct_slice", "lung_mask_grid")


def load(name_or_path: str | Path = LESION_MODEL, *, threads: int = 0, verify: bool = True,
         kind: str = "ct_slice") -> Model:
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
    kind
        The input kind the caller feeds (:data:`INPUT_KINDS`); a model made for another is refused.

    Returns
    -------
    Model
        The same object for the same file (unchanged on disk), threads and ``verify`` within a
        process (see :func:`clear_cache`).

    Raises
    ------
    ModelError
        Missing file or sidecar, checksum mismatch, a preprocessing the sidecar describes that
        this version cannot apply, or a file onnxruntime cannot load.
    """
    path, sidecar = resolve(name_or_path)
    stamps = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in (path, sidecar))
    model = _load_cached(str(path), stamps, threads, verify)
    found = model.meta["input"].get("kind", "ct_slice")
    if found != kind:
        raise ModelError(
            f"model {path} takes input of kind '{found}', but is used where '{kind}' is fed "
            "(e.g. lobe weights given as lesion weights); pass the right model"
        )
    return model


def clear_cache() -> None:
    """Forget the models loaded so far (the next :func:`load` reads the files again)."""
    _load_cached.cache_clear()


@functools.lru_cache(maxsize=8)
def _load_cached(path_text: str, stamps: tuple, threads: int, verify: bool) -> Model:
    """:func:`load` without the cache; ``stamps`` (sizes and mtimes) only key the cache."""
    import onnxruntime as ort

    path = Path(path_text)
    sidecar = path.with_suffix(".json")
    try:
        meta = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"model sidecar {sidecar} is not valid JSON ({exc})") from None
    for key in ("sha256", "input", "classes"):
        if key not in meta:
            raise ModelError(f"model sidecar {sidecar} lacks '{key}'; re-export the model with 'pneumolens train'")
    kind = meta["input"].get("kind", "ct_slice") if isinstance(meta["input"], dict) else "ct_slice"
    if kind not in INPUT_KINDS:
        raise ModelError(f"model sidecar {sidecar} has input.kind '{kind}'; known: {', '.join(INPUT_KINDS)}")
    # Slice preprocessing applies to CT-slice models; the lobe model describes its own input.
    preprocessing = Preprocessing.from_sidecar(meta, where=str(sidecar)) if kind == "ct_slice" else Preprocessing()
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
    logger.info("loaded model %s from %s", meta.get("name", path.stem), path)
    return Model(name=str(meta.get("name", path.stem)), path=path, meta=meta, session=session,
                 preprocessing=preprocessing)
