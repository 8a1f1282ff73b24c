"""The result of one analysis: :class:`Analysis`, with typed slots for later stages.

``pipeline.analyze`` builds an :class:`Analysis` from the lungs, lesions and findings; later
stages (lobes or zones, scores, the diagnostic assessment, follow-up links) fill their slot with
:func:`dataclasses.replace` instead of adding side channels::

    analysis = dataclasses.replace(analysis, regions=lobes)

Each slot's type is a small frozen dataclass owned by the stage that fills it; a slot is
``None`` when the stage did not run. :meth:`Analysis.summary` is the light, JSON-able view
(numbers and identifiers, no arrays) that batch runs and the service pass around and store.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pneumolens import __version__

if TYPE_CHECKING:  # imported for annotations only: keeps ``import pneumolens.analysis`` light
    from pneumolens.config import Config
    from pneumolens.findings import Findings
    from pneumolens.io import CTScan
    from pneumolens.masks import LesionMasks, LungMasks

RegionKind = Literal["lobes", "zones"]

#: Label values and names of the five lobes in :class:`Regions` of kind ``"lobes"``.
LOBE_NAMES: dict[int, str] = {1: "RUL", 2: "RML", 3: "RLL", 4: "LUL", 5: "LLL"}

#: Version of :meth:`Analysis.summary`'s layout: minor for added keys, major for changes.
SUMMARY_VERSION = "1.0"


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by ``None``, recursively.

    JSON has no NaN; empty-region ratios are NaN by the findings rule and become ``null``.
    Tuples become lists; numpy scalars become Python numbers.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


@dataclass(frozen=True)
class Regions:
    """A partition of the lungs into named regions (lobes, or zones where lobes are not found).

    Attributes
    ----------
    labels
        ``uint8`` ``(Z, Y, X)`` on the canonical grid of the scan: 0 outside the lungs, every lung
        voxel in exactly one region.
    names
        ``{label: name}``; for lobes :data:`LOBE_NAMES` (1 RUL, 2 RML, 3 RLL, 4 LUL, 5 LLL).
    kind
        ``"lobes"`` or ``"zones"``.
    method
        How the regions were made (e.g. ``"fissures"``, ``"atlas"``, ``"file"``, ``"zones:thirds"``).
    confidence
        ``{name: value in [0, 1]}``; empty when the method gives none.
    """

    labels: np.ndarray
    names: dict[int, str]
    kind: RegionKind
    method: str
    confidence: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.labels.dtype != np.uint8 or self.labels.ndim != 3:
            raise ValueError(f"Regions.labels must be 3D uint8, got {self.labels.dtype} {self.labels.shape}")
        if self.kind not in ("lobes", "zones"):
            raise ValueError(f"Regions.kind must be 'lobes' or 'zones', got {self.kind!r}")
        if 0 in self.names or len(set(self.names.values())) != len(self.names):
            raise ValueError(f"Regions.names must map labels >= 1 to distinct names, got {self.names}")

    def mask(self, name: str) -> np.ndarray:
        """Boolean ``(Z, Y, X)`` mask of the region called ``name``."""
        for label, region in self.names.items():
            if region == name:
                return self.labels == label
        raise KeyError(f"no region named {name!r}; have {list(self.names.values())}")

    def masks(self) -> list[tuple[str, np.ndarray]]:
        """``(name, mask)`` of every region, in label order."""
        return [(self.names[label], self.labels == label) for label in sorted(self.names)]


@dataclass(frozen=True)
class Scores:
    """Semi-quantitative CT scores of the lesions per region (filled by :mod:`pneumolens.scores`).

    Attributes
    ----------
    method
        Which regions the scores were computed on (``"<kind>:<regions method>"``, e.g.
        ``"lobes:model:lobes_unet3d"``, ``"zones:zones:volume_thirds"``, ``"lungs"``).
    ct_severity_0_25
        Pan et al. (Radiology 2020) CT severity score: sum of the five lobe scores (0-5 each);
        ``None`` unless the regions are the five lobes.
    lung_severity_0_20
        Chaganti et al. (Radiol Artif Intell 2020) lung severity score: sum of 0-4 per lobe;
        ``None`` unless the regions are the five lobes.
    po_percent, pho_percent
        Percentage of opacity and of high opacity (lesion voxels above -200 HU) of both lungs.
    per_region
        ``{name: {"po_percent", "pho_percent"[, "score", "lss"]}}`` for ``right_lung``,
        ``left_lung``, ``lungs`` and each region (lobe or zone; ``score`` 0-5 and ``lss`` 0-4 there).
    """

    method: str
    ct_severity_0_25: int | None = None
    lung_severity_0_20: int | None = None
    po_percent: float = float("nan")
    pho_percent: float = float("nan")
    per_region: dict[str, dict[str, float | int | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Assessment:
    """Scan-level diagnostic assessment (filled by :mod:`pneumolens.assessment`).

    Attributes
    ----------
    method
        The classifier or rule set that produced it (name and version).
    p_pneumonia
        Probability that the scan shows pneumonia.
    p_viral
        Probability of a viral (COVID-19 or other viral) cause, given pneumonia.
    type_probabilities
        ``{"covid19", "other_viral", "bacterial", "other"}``: probabilities given pneumonia,
        summing to 1.
    category
        RSNA consensus category: ``"typical"``, ``"indeterminate"``, ``"atypical"`` or
        ``"negative"`` (Simpson et al. 2020); ``co_rads`` its CO-RADS counterpart (1-5).
    reasons
        The rule that gave the category and the findings behind it, in words with numbers.
    priority, alert, triage_reasons
        Triage: ``"routine"`` / ``"high"`` / ``"urgent"``, whether to raise an alert, and why.
    findings
        The binary findings the rules read (``{name: bool}``).
    features
        Every measured feature (:meth:`pneumolens.features.Features.to_dict`), JSON-ready;
        ``features["distribution"]`` is ``analysis.json``'s ``distribution``.
    feature_vector
        The numeric features a cohort classifier uses (:data:`pneumolens.features.FEATURE_NAMES`).
    classifier
        ``{name, version, label, predicts, probability}`` of a cohort classifier, or ``None``.
    effusion_mask
        Boolean ``(Z, Y, X)`` mask of a detected pleural effusion, or ``None``.
    """

    method: str
    p_pneumonia: float = float("nan")
    p_viral: float = float("nan")
    type_probabilities: dict[str, float] = field(default_factory=dict)
    category: str = "negative"
    co_rads: int = 1
    reasons: tuple[str, ...] = ()
    priority: str = "routine"
    alert: bool = False
    triage_reasons: tuple[str, ...] = ()
    findings: dict[str, bool] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    feature_vector: dict[str, float] = field(default_factory=dict)
    classifier: dict[str, Any] | None = None
    effusion_mask: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class FollowUp:
    """Link to an earlier analysis of the same patient, for follow-up comparison.

    Attributes
    ----------
    prior
        Identifier of the earlier analysis (its Series Instance UID, or its analysis.json path).
    interval_days
        Days between the two acquisitions, when both dates are known.
    """

    prior: str
    interval_days: float | None = None


@dataclass(frozen=True)
class Analysis:
    """Everything one analysis produced, on the canonical grid of ``scan``.

    Attributes
    ----------
    scan
        The analysed CT.
    config
        The settings it ran with.
    lungs
        Final lung masks (after lung completion), the lungs every later stage sees.
    lesions
        Lesion masks inside ``lungs``.
    findings
        Volumes, HU statistics and the per-slice profile per region.
    warnings
        Messages for the reader (input and analysis), in the order they arose.
    timings_s
        Seconds per stage.
    lung_added_ml
        Volume lung completion added to the lung mask (dense lesion the mask had lost), mL.
    regions, scores, assessment, followup
        Slots of later stages; ``None`` when the stage did not run.
    """

    scan: CTScan
    config: Config
    lungs: LungMasks
    lesions: LesionMasks
    findings: Findings
    warnings: tuple[str, ...]
    timings_s: dict[str, float] = field(default_factory=dict)
    lung_added_ml: float = 0.0
    regions: Regions | None = None
    scores: Scores | None = None
    assessment: Assessment | None = None
    followup: FollowUp | None = None

    def summary(self) -> dict[str, Any]:
        """Numbers and identifiers of this analysis, JSON-able, without arrays.

        The layout (version :data:`SUMMARY_VERSION`): input identifiers and grid, the lesion
        method, whole-lung and per-region volumes, the filled slots (their scalar fields),
        warnings and timings. Non-finite numbers are ``None``.
        """
        info = self.scan.info
        both = self.findings.whole_lungs
        return finite_or_none({
            "summary_version": SUMMARY_VERSION,
            "generator": {"name": "pneumolens", "version": __version__},
            "input": {
                "path": info.path,
                "format": info.format,
                "series_instance_uid": info.series_instance_uid,
                "study_instance_uid": info.study_instance_uid,
                "shape": list(self.scan.shape),
                "spacing_mm": list(self.scan.spacing),
            },
            "method": self.lesions.method,
            "lungs_ml": both.volume_ml,
            "lung_added_ml": self.lung_added_ml,
            "lesion_ml": both.lesion_ml,
            "lesion_percent": both.lesion_percent,
            "ggo_ml": both.ggo_ml,
            "consolidation_ml": both.consolidation_ml,
            "regions": {
                r.name: {"volume_ml": r.volume_ml, "lesion_ml": r.lesion_ml, "lesion_percent": r.lesion_percent}
                for r in self.findings.regions
            },
            "region_kind": None if self.regions is None else self.regions.kind,
            "scores": _scalars(self.scores),
            "assessment": _scalars(self.assessment),
            "followup": _scalars(self.followup),
            "n_warnings": len(self.warnings),
            "timings_s": dict(self.timings_s),
        })


def _scalars(result: Any) -> dict[str, Any] | None:
    """The fields of a slot's dataclass that hold numbers, strings or dicts/lists of them."""
    if result is None:
        return None
    if not is_dataclass(result):
        raise TypeError(f"a slot must hold a dataclass, got {type(result).__name__}")
    out = {}
    for f in fields(result):
        value = getattr(result, f.name)
        if isinstance(value, np.ndarray):
            continue
        out[f.name] = asdict(value) if is_dataclass(value) else value
    return out


__all__ = [
    "LOBE_NAMES",
    "SUMMARY_VERSION",
    "Analysis",
    "Assessment",
    "FollowUp",
    "Regions",
    "Scores",
    "finite_or_none",
]
