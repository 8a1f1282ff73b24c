"""The table of cases of a study: reading it, checking its columns and ids, scores, default tasks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pneumolens.errors import InputError
from pneumolens.validate.specs import SubgroupSpec, TaskSpec, bin_members


@dataclass(frozen=True)
class ScoreColumn:
    """A score column as numbers, with what was dropped."""

    name: str
    values: np.ndarray  # float, NaN where missing / non-numeric / non-finite
    missing: int
    non_numeric: int


def norm_value(value: object) -> str:
    """Canonical text of a truth value (``1.0`` read by pandas and ``1`` compare equal)."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def read_cases(path: str | Path) -> pd.DataFrame:
    """Read a CSV of cases as text (no type guessing), one row per case."""
    path = Path(path)
    if not path.is_file():
        raise InputError("the cases table does not exist", where=path, todo="check the path")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=True, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the cases table as CSV ({exc})",
            where=path,
            todo="save it as UTF-8 CSV with a header row",
        ) from exc
    if table.empty:
        raise InputError(
            "the cases table has no rows", where=path, todo="give a CSV with one row per case"
        )
    table.columns = [str(c).strip() for c in table.columns]
    return table


def require_columns(table: pd.DataFrame, columns: list[str], *, where: str | Path | None) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in table.columns]
    if missing:
        raise InputError(
            f"column(s) {', '.join(repr(c) for c in missing)} not found; the table has "
            f"{', '.join(repr(c) for c in table.columns)}",
            where=where,
            todo="check the column names given to --truth, --score, --task, --subgroup and --id",
        )


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    # CSV line numbers (header is line 1), never case identifiers.
    lines = (np.flatnonzero(mask) + 2).tolist()
    more = "" if len(lines) <= limit else f" and {len(lines) - limit} more"
    return ", ".join(str(x) for x in lines[:limit]) + more


def check_ids(table: pd.DataFrame, column: str, *, where: str | Path | None) -> None:
    """Case ids must be present and unique."""
    ids = table[column]
    if ids.isna().any():
        raise InputError(
            f"{int(ids.isna().sum())} case id(s) missing in column {column!r} (CSV lines {_rows(ids.isna().to_numpy())})",
            where=where,
            todo="give every case an id",
        )
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise InputError(
            f"duplicate case ids in column {column!r}: {int(ids.duplicated().sum())} repeated "
            f"(CSV lines {_rows(dup)})",
            where=where,
            todo="keep one row per case (merge readings first) or fix the ids",
        )


def score_column(
    table: pd.DataFrame, name: str, *, strict: bool, where: str | Path | None
) -> ScoreColumn:
    """Convert a score column to numbers, counting what cannot be used."""
    raw = table[name]
    missing = raw.isna().to_numpy()
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, copy=True)
    bad = ~np.isfinite(values) & ~missing
    if strict and (missing.any() or bad.any()):
        raise InputError(
            f"score column {name!r} has {int(missing.sum())} missing and {int(bad.sum())} "
            f"non-numeric or infinite value(s) (CSV lines {_rows(missing | bad)})",
            where=where,
            todo="fix those rows, or drop --strict to exclude them (they are counted in the report)",
        )
    values[~np.isfinite(values)] = np.nan
    return ScoreColumn(
        name=name, values=values, missing=int(missing.sum()), non_numeric=int(bad.sum())
    )


def default_tasks(
    table: pd.DataFrame,
    truth: str,
    *,
    positive: tuple[str, ...] | None,
    negative: tuple[str, ...] | None,
    reference: str | None,
    where: str | Path | None,
) -> list[TaskSpec]:
    """Tasks implied by ``--truth/--positive/--negative/--reference``."""
    classes = sorted({norm_value(v) for v in table[truth].dropna()})
    tasks: list[TaskSpec] = []
    if positive:
        unknown = [p for p in positive + (negative or ()) if p not in classes]
        if unknown:
            raise InputError(
                f"value(s) {unknown} not found in truth column {truth!r}, whose values are {classes}",
                where=where,
                todo="check --positive / --negative (values are compared as text)",
            )
        others = negative or tuple(c for c in classes if c not in positive)
        name = f"{'+'.join(positive)} vs {'+'.join(others) if len(others) <= 2 else 'rest'}"
        tasks.append(TaskSpec(name=name, column=truth, positives=positive, negatives=negative))
    if reference is not None:
        if reference not in classes:
            raise InputError(
                f"reference value {reference!r} not found in truth column {truth!r}, whose values are {classes}",
                where=where,
            )
        for c in classes:
            if c != reference:
                tasks.append(
                    TaskSpec(
                        name=f"{c} vs {reference}",
                        column=truth,
                        positives=(c,),
                        negatives=(reference,),
                    )
                )
    if not positive and reference is None:
        if set(classes) == {"0", "1"}:
            tasks.append(TaskSpec(name="1 vs 0", column=truth, positives=("1",), negatives=("0",)))
        elif {c.lower() for c in classes} == {"false", "true"}:
            pos = next(c for c in classes if c.lower() == "true")
            neg = next(c for c in classes if c.lower() == "false")
            tasks.append(
                TaskSpec(name=f"{pos} vs {neg}", column=truth, positives=(pos,), negatives=(neg,))
            )
        elif len(classes) < 2:
            pass  # reported as a one-class error when the task is evaluated
        else:
            raise InputError(
                f"truth column {truth!r} has values {classes} and no positive value was given",
                where=where,
                todo="give --positive VALUE (and optionally --negative VALUE or --reference VALUE)",
            )
    return tasks


def subgroup_assignment(
    table: pd.DataFrame, spec: SubgroupSpec, *, where: str | Path | None
) -> tuple[list[str], np.ndarray]:
    """Group labels and, per row, the group index (-1: in no group)."""
    raw = table[spec.column]
    if spec.bins is None:
        values = raw.map(lambda v: None if pd.isna(v) else str(v).strip())
        labels = sorted(values.dropna().unique().tolist(), key=natural_key)
        index = {v: i for i, v in enumerate(labels)}
        groups = values.map(lambda v: -1 if v is None else index[v]).to_numpy(dtype=int)
        return [f"{spec.column}={v}" for v in labels], groups
    numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    non_numeric = raw.notna().to_numpy() & ~np.isfinite(numbers)
    if non_numeric.any():
        raise InputError(
            f"subgroup column {spec.column!r} has {int(non_numeric.sum())} non-numeric value(s) (CSV lines {_rows(non_numeric)}) but numeric bins {list(spec.bins)}",
            where=where,
            todo="fix those values or use the column as categorical (--subgroup COLUMN)",
        )
    groups = np.full(len(raw), -1)
    for i, b in enumerate(spec.bins):
        inside = bin_members(b, numbers)
        overlap = inside & (groups >= 0)
        if overlap.any():
            raise InputError(
                f"subgroup bins {list(spec.bins)} of {spec.column!r} overlap ({int(overlap.sum())} case(s) in two bins)",
                where=where,
                todo="make the bins exclusive, e.g. <=40,>40",
            )
        groups[inside] = i
    return [f"{spec.column}{b}" for b in spec.bins], groups


def natural_key(text: str) -> tuple:
    """Sort key: numbers by value before text."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)
