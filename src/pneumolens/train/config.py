"""Training recipe for the lesion model, read from a TOML file (``configs/lesions.toml``)."""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

import tomllib

from pneumolens.errors import InputError


@dataclass(frozen=True)
class DataConfig:
    """Which slices to train on.

    ``root``: the shared data folder (``$PNEUMOLENS_SHARED_DATA`` overrides it); relative paths
    are taken from the config file's folder. ``phantoms``: number of synthetic phantom volumes
    used as the HU source instead of the real volumes (for tests without the shared data).
    """

    root: str = "../../shared/data"
    size: int = 192
    zenodo: bool = True
    zenodo_limit: int = 0
    zenodo_val_step: int = 2
    #: Zenodo validation block ``[start, stop)`` inside the training block (slice numbers at case
    #: boundaries); its slices leave the training set. Empty: validate on the held-out block
    #: (stages 1-7, which thereby used the test block for monitoring).
    zenodo_val: tuple[int, ...] = ()
    medseg: bool = True
    medseg_limit: int = 0
    #: MedSeg validation files ``[from, to)`` (file numbers) inside the training files; empty:
    #: validate on the held-out files (stages 1-7).
    medseg_val: tuple[int, ...] = ()
    #: Parts of the held-out blocks to train on, ``[start, stop)`` slice numbers / file numbers:
    #: cross-fitting (train on one half of the held-out patients, score the other half) and a
    #: final model on all the data. The rest of the held-out block stays out of training and is
    #: what validates when ``zenodo_val`` / ``medseg_val`` is empty.
    zenodo_extra: tuple[int, ...] = ()
    medseg_extra: tuple[int, ...] = ()
    hu_volumes: bool = True
    phantoms: int = 0
    hu_variants: int = 3
    hu_negative_fraction: float = 0.2
    hu_max_slices: int = 0
    #: Crop HU slices with the whole volume's lung box, as inference does.
    hu_volume_box: bool = False
    #: Keep slices with a lung mask above this fraction of the image (but below 3 %) as clean
    #: negatives (0 = skip them).
    hu_min_negative_fraction: float = 0.0
    #: Share of the lesioned HU variants drawn as diffuse disease (0: none, as in stages 1-6).
    hu_diffuse_fraction: float = 0.0
    weight_zenodo: float = 1.0
    weight_medseg: float = 6.0
    weight_inserted: float = 1.5
    #: Samples whose lesion covers at least ``extensive_fraction`` of the slice's lungs are
    #: drawn ``weight_extensive`` times as often (extensive disease is rare in the training
    #: slices and common in the sickest patients).
    weight_extensive: float = 1.0
    extensive_fraction: float = 0.3


@dataclass(frozen=True)
class ModelConfig:
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    num_res_units: int = 1
    dropout: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    samples_per_epoch: int = 2000
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    max_steps: int = 0
    out_dir: str = "runs/lesion_unet2d"
    #: Learning-rate schedule: "onecycle" over the whole recipe (stages 1-7) or
    #: "cosine_restarts" (linear warm-up over ``warmup_steps``, then cosine cycles of
    #: ``restart_steps`` growing ``restart_mult``-fold, down to ``min_lr_fraction`` of ``lr``):
    #: every cycle end is an annealed model, so a run that spans sessions has usable checkpoints.
    schedule: str = "onecycle"
    warmup_steps: int = 0
    restart_steps: int = 2500
    restart_mult: int = 2
    min_lr_fraction: float = 0.02
    #: Also write ``last.pt`` in the middle of an epoch when this many minutes passed since the
    #: last one (0: at the end of each epoch only).
    checkpoint_minutes: float = 0.0
    #: Validation metrics averaged into the score that picks ``best.pt`` (empty: all of them).
    select_on: tuple[str, ...] = ()
    #: Dice on every n-th Zenodo training slice (no augmentation) after each epoch (0: not measured).
    train_eval_step: int = 0
    #: Random flips, rotation, scale, intensity changes of every batch (off only for fitting tests).
    augment: bool = True
    #: Start from these weights (a ``best.pt``/``last.pt`` of an earlier stage); relative paths
    #: are taken from the working directory. Ignored when resuming.
    init_from: str = ""


@dataclass(frozen=True)
class ExportConfig:
    onnx: str = "runs/lesion_unet2d/lesion_unet2d.onnx"
    opset: int = 17
    name: str = "lesion_unet2d"
    version: str = "0.1.0"


@dataclass(frozen=True)
class RecipeConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    base_dir: Path = Path(".")

    def data_root(self) -> Path:
        env = os.environ.get("PNEUMOLENS_SHARED_DATA")
        root = Path(env) if env else Path(self.data.root)
        return root if root.is_absolute() else (self.base_dir / root).resolve()

    def out_dir(self) -> Path:
        p = Path(self.train.out_dir)
        return p if p.is_absolute() else Path.cwd() / p

    def onnx_path(self) -> Path:
        p = Path(self.export.onnx)
        return p if p.is_absolute() else Path.cwd() / p


def _section(cls: type, table: dict, where: Path, name: str):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise InputError(f"unknown keys {unknown} in [{name}]", where=where, todo=f"use only {sorted(known)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    for key, value in kwargs.items():
        expected = type(_default(known[key]))
        if not _fits(value, expected):
            raise InputError(
                f"[{name}] {key} = {value!r} is not a {expected.__name__}", where=where,
                todo=f"give a {expected.__name__}, like the default {_default(known[key])!r}",
            )
    return cls(**kwargs)


def _default(f):
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _fits(value: object, expected: type) -> bool:
    """TOML value fits a field whose default has type ``expected`` (ints pass for floats; bools only for bools)."""
    if isinstance(value, bool) or expected is bool:
        return isinstance(value, bool) and expected is bool
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


def load_config(path: str | Path) -> RecipeConfig:
    """Read a training recipe; unknown sections or keys are an :class:`InputError`."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("training config not found", where=path, todo="pass an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"training config is not valid TOML ({exc})", where=path, todo="fix the syntax") from None
    sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "export": ExportConfig}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise InputError(f"unknown sections {unknown}", where=path, todo=f"use only {sorted(sections)}")
    parts = {k: _section(cls, raw.get(k, {}), path, k) for k, cls in sections.items()}
    _check_blocks(parts["data"], path)
    return RecipeConfig(**parts, base_dir=path.resolve().parent)


#: ``[data]`` keys that hold a block ``[start, stop)`` of slice or file numbers (or nothing).
BLOCK_KEYS = ("zenodo_val", "medseg_val", "zenodo_extra", "medseg_extra")


def _check_blocks(data: DataConfig, where: Path) -> None:
    """Each block key is empty or two integers ``[start, stop)`` with start < stop."""
    for key in BLOCK_KEYS:
        block = getattr(data, key)
        ok = len(block) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in block) and block[0] < block[1]
        if block and not ok:
            raise InputError(f"[data] {key} = {list(block)} is not a block [start, stop) with start < stop", where=where,
                             todo="give two integers, the first smaller, e.g. [1258, 1442]; or leave the key out")
