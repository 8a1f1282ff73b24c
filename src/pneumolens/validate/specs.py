"""What a diagnostic-accuracy study asks: tasks, subgroup variables, options (parsed from CLI specs)."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pneumolens.errors import InputError


@dataclass(frozen=True)
class TaskSpec:
    """A binary task on a truth column.

    ``negatives=None`` means every other (non-missing) value of ``column``; ``scores=None`` means
    every score of the study.
    """

    name: str
    column: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...] | None = None
    scores: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SubgroupSpec:
    """A subgroup variable: categorical (``bins=None``) or numeric bins such as ``("<=40", ">40")``."""

    column: str
    bins: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StudyOptions:
    """How the study is computed. See the module docstring."""

    threshold: str | float = "youden"
    direction: Literal["<", ">", "auto"] = "<"
    ci_method: Literal["delong", "bootstrap"] = "delong"
    n_boot: int = 0
    seed: int | None = None
    level: float = 0.95
    compare_method: Literal["delong", "bootstrap"] = "delong"
    unpaired_reference: Literal["t", "normal"] = "t"
    adjust: Literal["holm", "bonferroni", "none"] = "holm"
    strict: bool = False

    def __post_init__(self) -> None:
        if self.ci_method == "bootstrap" and self.n_boot < 2:
            raise InputError(
                "a bootstrap CI needs bootstrap replicates",
                todo="give --bootstrap N (e.g. 2000) with --ci-method bootstrap",
            )
        if self.compare_method == "bootstrap" and self.n_boot < 2:
            raise InputError(
                "a bootstrap test needs bootstrap replicates",
                todo="give --bootstrap N (e.g. 2000) with --compare-method bootstrap",
            )
        if not 0.0 < self.level < 1.0:
            raise InputError(f"confidence level must be in (0, 1), got {self.level}")


_TASK_RE = re.compile(
    r"^(?P<name>[^:]+):(?P<col>[^=]+)=(?P<pos>[^/@]+)(/(?P<neg>[^@]+))?(@(?P<scores>.+))?$"
)


def _split(values: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in values.split(",") if v.strip())


def parse_task(text: str) -> TaskSpec:
    """Parse ``NAME:COL=POS1,POS2[/NEG1,NEG2][@SCORE1+SCORE2]``.

    Examples: ``covid:diagnosis=covid/normal``,
    ``viral:diagnosis=covid,other_viral/bacterial,other``.
    """
    match = _TASK_RE.match(text.strip())
    if not match:
        raise InputError(
            f"cannot read the task {text!r}",
            todo="write it as NAME:COLUMN=POS1,POS2[/NEG1,NEG2][@SCORE1+SCORE2]",
        )
    neg = match["neg"]
    scores = match["scores"]
    return TaskSpec(
        name=match["name"].strip(),
        column=match["col"].strip(),
        positives=_split(match["pos"]),
        negatives=_split(neg) if neg else None,
        scores=tuple(s.strip() for s in scores.split("+") if s.strip()) if scores else None,
    )


_BIN_RE = re.compile(r"^(<=|>=|<|>|==|=)\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)$")
_OPS = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
    "=": operator.eq,
}


def bin_members(bin_text: str, numbers: np.ndarray) -> np.ndarray:
    """Which of ``numbers`` fall in the subgroup bin ``bin_text`` (e.g. ``"<=40"``); NaN in none."""
    op, number = _BIN_RE.match(bin_text).groups()
    return _OPS[op](numbers, float(number)) & np.isfinite(numbers)


def parse_subgroup(text: str) -> SubgroupSpec:
    """Parse ``COL`` (categorical) or ``COL:<=40,>40`` (numeric bins)."""
    if ":" not in text:
        return SubgroupSpec(column=text.strip())
    col, bins = text.split(":", 1)
    parsed = _split(bins)
    for b in parsed:
        if not _BIN_RE.match(b):
            raise InputError(
                f"cannot read the subgroup bin {b!r} in {text!r}",
                todo="write bins as comparisons with a number, e.g. age:<=40,>40",
            )
    if len(parsed) < 2:
        raise InputError(f"subgroup {text!r} needs at least two bins", todo="e.g. age:<=40,>40")
    return SubgroupSpec(column=col.strip(), bins=parsed)
