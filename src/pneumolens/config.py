"""One frozen configuration passed into :func:`pneumolens.pipeline.analyze`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Method = Literal["density", "model"]
RegionChoice = Literal["lobes", "zones", "none"]

#: The lesion methods, in the order offered to users (``--method``).
METHODS: tuple[Method, ...] = ("model", "density")

#: The lesion method used when none is asked for: the learned model only once it measured
#: better than the density method on real data (docs/models/lesion_unet2d.md).
DEFAULT_METHOD: Method = "model"


@dataclass(frozen=True)
class Config:
    """Analysis settings, read once at the edge (CLI, service) and passed down.

    Attributes
    ----------
    method
        Lesion method, one of :data:`METHODS`: ``"model"`` (shipped ONNX model) or
        ``"density"`` (HU bands).
    lesion_weights
        Optional path to other ONNX lesion weights (``--weights``).
    threads
        Threads for onnxruntime inference (0 = onnxruntime's default, all cores).
    lesion_tta
        Flip test-time augmentation of the lesion model (the default; ``--no-tta`` turns it off:
        half the network time, lower Dice; model card).
    regions
        How the lungs are divided for per-region findings and scores: ``"lobes"`` (the shipped
        lobe model, or ``lobes_file``), ``"zones"`` (thirds of each lung by volume) or ``"none"``.
    lobes_file
        A lobe label map made elsewhere (``--lobes FILE``), on the scan's grid; used instead of
        the lobe model.
    lobes_convention
        Label values of ``lobes_file``: ``"auto"``, ``"pneumolens"``, ``"lungmask"``,
        ``"totalsegmentator"`` or ``"totalsegmentator_v1"`` (:data:`pneumolens.anatomy.lobes.CONVENTIONS`).
    classifier
        Optional cohort classifier file (``pneumolens train classifier``; ``--classifier``).
    triage
        Triage threshold overrides ``{name: value}`` (:class:`pneumolens.assessment.TriageThresholds`;
        ``--triage``); empty: the documented defaults.
    """

    method: Method = DEFAULT_METHOD
    lesion_weights: Path | None = None
    threads: int = 0
    lesion_tta: bool = True
    regions: RegionChoice = "lobes"
    lobes_file: Path | None = None
    lobes_convention: str = "auto"
    classifier: Path | None = None
    triage: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"Config.method must be one of {METHODS}, got {self.method!r}")
        if self.threads < 0:
            raise ValueError(f"Config.threads must be >= 0, got {self.threads}")
        if self.regions not in ("lobes", "zones", "none"):
            raise ValueError(f"Config.regions must be 'lobes', 'zones' or 'none', got {self.regions!r}")
        if self.lobes_file is not None and self.regions != "lobes":
            raise ValueError("Config.lobes_file needs Config.regions == 'lobes'")
