"""A diagnostic-accuracy study from one table of cases: tasks x scores, subgroups, comparisons.

This is what a radiology AI validation paper reports (its "Table 2" per task and "Table 3" per
subgroup), computed with the functions of :mod:`pneumolens.validate` so the numbers match pROC.

* A **task** is a binary question asked of a truth column: which values are positive, which are
  negative (default: every other value), e.g. ``COVID-19 vs normal`` or ``viral vs non-viral``.
* Every task is evaluated with every **score** column (or the scores the task names): AUC with a
  95 % CI (DeLong, or stratified bootstrap), and the operating point (Youden-optimal or fixed
  threshold) with exact CIs.
* Several scores on the same task are compared pairwise with the paired DeLong (or bootstrap)
  test, on the cases that have both scores; p-values are adjusted (Holm by default) within each
  task.
* A **subgroup** variable (sex, vendor, or a numeric column cut into bins such as ``age <= 40``
  and ``age > 40``) splits the cases; each group is evaluated at the threshold found on all the
  task's cases (so the groups' sensitivities are comparable) and the groups' AUCs are compared
  pairwise with the unpaired DeLong test (pROC's Welch t by default), adjusted within each
  variable x task x score.

Missing or non-numeric scores are dropped per score (and counted), or raise with ``strict``.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pneumolens.errors import InputError
from pneumolens.validate.bootstrap import bootstrap_ci
from pneumolens.validate.compare import (
    AucComparison,
    adjust_pvalues,
    bootstrap_test,
    delong_paired,
    delong_unpaired,
)
from pneumolens.validate.delong import delong_ci, delong_variance
from pneumolens.validate.operating import OperatingPoint, operating_point
from pneumolens.validate.roc import RocCurve, roc_curve

# ---------------------------------------------------------------------------------------------
# Specifications


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


# ---------------------------------------------------------------------------------------------
# Input table


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


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class TaskResult:
    """One task evaluated with one score on one set of cases."""

    task: str
    score: str
    positives: int
    negatives: int
    excluded_missing_score: int
    roc: RocCurve | None
    auc: float
    auc_se: float
    auc_ci: tuple[float, float]
    auc_ci_method: str
    auc_ci_delong: tuple[float, float]
    auc_ci_bootstrap: tuple[float, float] | None
    operating_point: OperatingPoint | None
    note: str = ""


@dataclass(frozen=True)
class Comparison:
    """A named comparison of two AUCs with its adjusted p-value."""

    task: str
    score: str  # the score ("a vs b" for paired score comparisons)
    a: str
    b: str
    n: int
    result: AucComparison | None
    p_adjusted: float
    adjust: str
    note: str = ""


@dataclass(frozen=True)
class SubgroupGroup:
    label: str
    n: int
    tasks: tuple[TaskResult, ...]


@dataclass(frozen=True)
class SubgroupResult:
    variable: str
    groups: tuple[SubgroupGroup, ...]
    comparisons: tuple[Comparison, ...]
    unassigned: int


@dataclass(frozen=True)
class StudyResult:
    source: str
    n_rows: int
    truth: str
    scores: tuple[ScoreColumn, ...]
    options: StudyOptions
    tasks: tuple[TaskResult, ...]
    comparisons: tuple[Comparison, ...]
    subgroups: tuple[SubgroupResult, ...]
    task_specs: tuple[TaskSpec, ...] = field(default=())


# ---------------------------------------------------------------------------------------------
# Computation

NAN2 = (float("nan"), float("nan"))


def _task_labels(table: pd.DataFrame, spec: TaskSpec) -> np.ndarray:
    """1 positive, 0 negative, -1 not in the task (other value or missing truth)."""
    values = table[spec.column].map(lambda v: None if pd.isna(v) else norm_value(v))
    pos = values.isin(spec.positives).to_numpy()
    if spec.negatives is None:
        neg = values.notna().to_numpy() & ~pos
    else:
        neg = values.isin(spec.negatives).to_numpy()
    return np.where(pos, 1, np.where(neg, 0, -1))


def evaluate(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    task: str,
    score: str,
    options: StudyOptions,
    threshold: str | float | None = None,
    direction: str | None = None,
    seed_offset: int = 0,
) -> TaskResult:
    """Evaluate one score on one task (rows with label -1 or a NaN score are left out).

    ``threshold`` and ``direction`` override the options (subgroups use the whole task's).
    """
    in_task = labels >= 0
    valid = in_task & np.isfinite(scores)
    y, s = labels[valid] == 1, scores[valid]
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    excluded = int((in_task & ~np.isfinite(scores)).sum())
    if n_pos == 0 or n_neg == 0:
        return TaskResult(
            task,
            score,
            n_pos,
            n_neg,
            excluded,
            None,
            float("nan"),
            float("nan"),
            NAN2,
            options.ci_method,
            NAN2,
            None,
            None,
            note=f"not estimable: {n_pos} positive(s), {n_neg} negative(s)",
        )
    roc = roc_curve(y, s, direction=options.direction if direction is None else direction)
    var = delong_variance(roc)
    ci_delong = delong_ci(roc, level=options.level)
    ci_boot = None
    if options.n_boot >= 2:
        seed = None if options.seed is None else options.seed + seed_offset
        ci_boot = bootstrap_ci(roc, n_boot=options.n_boot, seed=seed, level=options.level)
    op = operating_point(
        roc, rule=options.threshold if threshold is None else threshold, level=options.level
    )
    if threshold is not None and options.threshold == "youden":
        # A subgroup cut at the whole task's Youden threshold: say so, it is not a fixed value.
        op = dataclasses.replace(op, rule="youden (all cases)")
    note = (
        "" if n_pos >= 2 and n_neg >= 2 else "CI not estimable with fewer than 2 cases of a class"
    )
    return TaskResult(
        task=task,
        score=score,
        positives=n_pos,
        negatives=n_neg,
        excluded_missing_score=excluded,
        roc=roc,
        auc=roc.auc,
        auc_se=float(np.sqrt(var)) if np.isfinite(var) else float("nan"),
        auc_ci=ci_boot if options.ci_method == "bootstrap" and ci_boot is not None else ci_delong,
        auc_ci_method=options.ci_method,
        auc_ci_delong=ci_delong,
        auc_ci_bootstrap=ci_boot,
        operating_point=op,
        note=note,
    )


def _adjusted(comparisons: list[Comparison], method: str) -> list[Comparison]:
    p = [c.result.p_value if c.result is not None else float("nan") for c in comparisons]
    adj = adjust_pvalues(p, method=method)
    return [
        Comparison(c.task, c.score, c.a, c.b, c.n, c.result, float(a), method, c.note)
        for c, a in zip(comparisons, adj)
    ]


def _paired_comparisons(
    labels: np.ndarray, scores: dict[str, np.ndarray], *, task: str, options: StudyOptions
) -> list[Comparison]:
    out = []
    for a, b in itertools.combinations(scores, 2):
        both = (labels >= 0) & np.isfinite(scores[a]) & np.isfinite(scores[b])
        y = labels[both] == 1
        label = f"{a} vs {b}"
        if y.all() or not y.any():
            out.append(
                Comparison(
                    task,
                    label,
                    a,
                    b,
                    int(both.sum()),
                    None,
                    float("nan"),
                    options.adjust,
                    "not estimable: one class only",
                )
            )
            continue
        ra = roc_curve(y, scores[a][both], direction=options.direction)
        rb = roc_curve(y, scores[b][both], direction=options.direction)
        if options.compare_method == "bootstrap":
            res = bootstrap_test(
                ra, rb, paired=True, n_boot=options.n_boot, seed=options.seed, level=options.level
            )
        else:
            res = delong_paired(ra, rb, level=options.level)
        out.append(
            Comparison(task, label, a, b, int(both.sum()), res, float("nan"), options.adjust)
        )
    return _adjusted(out, options.adjust)


def _unpaired(a: TaskResult, b: TaskResult, options: StudyOptions) -> AucComparison | None:
    if a.roc is None or b.roc is None:
        return None
    if options.compare_method == "bootstrap":
        return bootstrap_test(
            a.roc,
            b.roc,
            paired=False,
            n_boot=options.n_boot,
            seed=options.seed,
            level=options.level,
        )
    return delong_unpaired(a.roc, b.roc, reference=options.unpaired_reference, level=options.level)


def subgroup_assignment(
    table: pd.DataFrame, spec: SubgroupSpec, *, where: str | Path | None
) -> tuple[list[str], np.ndarray]:
    """Group labels and, per row, the group index (-1: in no group)."""
    raw = table[spec.column]
    if spec.bins is None:
        values = raw.map(lambda v: None if pd.isna(v) else str(v).strip())
        labels = sorted(values.dropna().unique().tolist(), key=_natural_key)
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
        op, number = _BIN_RE.match(b).groups()
        inside = _OPS[op](numbers, float(number)) & np.isfinite(numbers)
        overlap = inside & (groups >= 0)
        if overlap.any():
            raise InputError(
                f"subgroup bins {list(spec.bins)} of {spec.column!r} overlap ({int(overlap.sum())} case(s) in two bins)",
                where=where,
                todo="make the bins exclusive, e.g. <=40,>40",
            )
        groups[inside] = i
    return [f"{spec.column}{b}" for b in spec.bins], groups


def _natural_key(text: str) -> tuple:
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def run_study(
    table: pd.DataFrame,
    *,
    truth: str,
    scores: list[str],
    tasks: list[TaskSpec],
    subgroups: list[SubgroupSpec] = (),
    options: StudyOptions = StudyOptions(),
    id_column: str | None = None,
    source: str | Path = "cases",
) -> StudyResult:
    """Run a whole study on a table of cases (one row per case, values as text).

    Parameters
    ----------
    table
        As read by :func:`read_cases`.
    truth
        The reference-standard column (used to check it exists; tasks name their own columns).
    scores
        Score columns (higher = more likely positive unless ``options.direction`` says otherwise).
    tasks
        Binary tasks, e.g. from :func:`default_tasks` and :func:`parse_task`.
    subgroups
        Subgroup variables.
    options
        See :class:`StudyOptions`.
    id_column
        Case-id column, checked for missing and duplicate ids.
    source
        Name of the table for messages (a file path).

    Raises
    ------
    InputError
        Missing columns, duplicate ids, a task with one class only, no task, bad scores with
        ``strict``.
    """
    if not scores:
        raise InputError("no score column given", todo="give at least one --score COLUMN")
    if not tasks:
        raise InputError(
            "no task to evaluate",
            where=source,
            todo="give --positive VALUE, --reference VALUE or --task",
        )
    task_scores = [s for t in tasks for s in (t.scores or ())]
    needed = [
        truth,
        *scores,
        *task_scores,
        *(t.column for t in tasks),
        *(g.column for g in subgroups),
    ]
    if id_column:
        needed.append(id_column)
    require_columns(table, needed, where=source)
    if id_column:
        check_ids(table, id_column, where=source)
    all_scores = list(dict.fromkeys([*scores, *task_scores]))
    columns = {s: score_column(table, s, strict=options.strict, where=source) for s in all_scores}

    task_results: list[TaskResult] = []
    comparisons: list[Comparison] = []
    labels_by_task: dict[str, np.ndarray] = {}
    for t_index, spec in enumerate(tasks):
        labels = _task_labels(table, spec)
        n_pos, n_neg = int((labels == 1).sum()), int((labels == 0).sum())
        if n_pos == 0 or n_neg == 0:
            raise InputError(
                f"task {spec.name!r}: the truth has one class only ({n_pos} positive(s), {n_neg} negative(s) in column {spec.column!r})",
                where=source,
                todo="check the truth column and the positive/negative values; a ROC analysis needs both classes",
            )
        labels_by_task[spec.name] = labels
        names = list(spec.scores or scores)
        for s_index, name in enumerate(names):
            result = evaluate(
                labels,
                columns[name].values,
                task=spec.name,
                score=name,
                options=options,
                seed_offset=1000 * t_index + s_index,
            )
            if result.roc is None:
                raise InputError(
                    f"task {spec.name!r}, score {name!r}: {result.note} once missing scores are dropped",
                    where=source,
                    todo="check the score column",
                )
            task_results.append(result)
        if len(names) > 1:
            comparisons.extend(
                _paired_comparisons(
                    labels, {n: columns[n].values for n in names}, task=spec.name, options=options
                )
            )

    subgroup_results = []
    for g_spec in subgroups:
        group_labels, assignment = subgroup_assignment(table, g_spec, where=source)
        groups = []
        per_group: dict[str, dict[tuple[str, str], TaskResult]] = {}
        for gi, glabel in enumerate(group_labels):
            in_group = assignment == gi
            entries = []
            for overall in task_results:
                labels = np.where(in_group, labels_by_task[overall.task], -1)
                threshold = overall.operating_point.threshold
                res = evaluate(
                    labels,
                    columns[overall.score].values,
                    task=overall.task,
                    score=overall.score,
                    options=options,
                    threshold=threshold,
                    direction=overall.roc.direction,
                )
                entries.append(res)
            per_group[glabel] = {(e.task, e.score): e for e in entries}
            groups.append(SubgroupGroup(label=glabel, n=int(in_group.sum()), tasks=tuple(entries)))
        comps = []
        for overall in task_results:
            key = (overall.task, overall.score)
            family = []
            for ga, gb in itertools.combinations(group_labels, 2):
                ra, rb = per_group[ga][key], per_group[gb][key]
                res = _unpaired(ra, rb, options)
                note = "" if res is not None else "not estimable: a group lacks one class"
                family.append(
                    Comparison(
                        overall.task,
                        overall.score,
                        ga,
                        gb,
                        ra.positives + ra.negatives + rb.positives + rb.negatives,
                        res,
                        float("nan"),
                        options.adjust,
                        note,
                    )
                )
            comps.extend(_adjusted(family, options.adjust))
        subgroup_results.append(
            SubgroupResult(
                variable=g_spec.column,
                groups=tuple(groups),
                comparisons=tuple(comps),
                unassigned=int((assignment < 0).sum()),
            )
        )

    return StudyResult(
        source=str(source),
        n_rows=len(table),
        truth=truth,
        scores=tuple(columns[s] for s in all_scores),
        options=options,
        tasks=tuple(task_results),
        comparisons=tuple(comparisons),
        subgroups=tuple(subgroup_results),
        task_specs=tuple(tasks),
    )


# ---------------------------------------------------------------------------------------------
# report.json


def _num(x: float | None) -> float | int | None:
    if x is None:
        return None
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return x if np.isfinite(x) else None


def _pair(ci: tuple[float, float] | None) -> list | None:
    return None if ci is None else [_num(ci[0]), _num(ci[1])]


def operating_point_dict(op: OperatingPoint | None) -> dict | None:
    if op is None:
        return None
    m = op.metrics
    return {
        "rule": op.rule,
        "threshold": _num(op.threshold),
        "direction": op.direction,
        "positive_when": f"score {'>=' if op.direction == '<' else '<='} threshold",
        "n_tied": op.n_tied,
        "sensitivity": _num(m.sensitivity.value),
        "sensitivity_ci": _pair(m.sensitivity.ci),
        "specificity": _num(m.specificity.value),
        "specificity_ci": _pair(m.specificity.ci),
        "ppv": _num(m.ppv.value),
        "ppv_ci": _pair(m.ppv.ci),
        "npv": _num(m.npv.value),
        "npv_ci": _pair(m.npv.ci),
        "accuracy": _num(m.accuracy.value),
        "accuracy_ci": _pair(m.accuracy.ci),
        "lr_pos": _num(m.lr_pos),
        "lr_pos_ci": _pair(m.lr_pos_ci),
        "lr_neg": _num(m.lr_neg),
        "lr_neg_ci": _pair(m.lr_neg_ci),
        "youden_index": _num(op.youden_index),
        "tp": m.tp,
        "fp": m.fp,
        "tn": m.tn,
        "fn": m.fn,
    }


def task_dict(r: TaskResult) -> dict:
    return {
        "task": r.task,
        "score": r.score,
        "positives": r.positives,
        "negatives": r.negatives,
        "excluded_missing_score": r.excluded_missing_score,
        "direction": None if r.roc is None else r.roc.direction,
        "auc": _num(r.auc),
        "auc_se": _num(r.auc_se),
        "auc_ci": _pair(r.auc_ci),
        "auc_ci_method": r.auc_ci_method,
        "auc_ci_delong": _pair(r.auc_ci_delong),
        "auc_ci_bootstrap": _pair(r.auc_ci_bootstrap),
        "operating_point": operating_point_dict(r.operating_point),
        "note": r.note or None,
    }


def comparison_dict(c: Comparison) -> dict:
    res = c.result
    return {
        "task": c.task,
        "score": c.score,
        "a": c.a,
        "b": c.b,
        "n": c.n,
        "paired": None if res is None else res.paired,
        "method": None if res is None else res.method,
        "alternative": None if res is None else res.alternative,
        "statistic": None if res is None else _num(res.statistic),
        "df": None if res is None else _num(res.df),
        "p_value": None if res is None else _num(res.p_value),
        "p_adjusted": _num(c.p_adjusted),
        "adjust": c.adjust,
        "auc_a": None if res is None else _num(res.auc_a),
        "auc_b": None if res is None else _num(res.auc_b),
        "difference": None if res is None else _num(res.difference),
        "difference_ci": None if res is None else _pair(res.difference_ci),
        "note": c.note or None,
    }


def report_dict(study: StudyResult) -> dict:
    """The JSON-ready report (NaN and infinities become null)."""
    from pneumolens import __version__

    o = study.options
    return {
        "pneumolens_version": __version__,
        "source": Path(study.source).name,
        "n_rows": study.n_rows,
        "truth": study.truth,
        "options": {
            "threshold": o.threshold,
            "direction": o.direction,
            "ci_method": o.ci_method,
            "bootstrap": o.n_boot,
            "seed": o.seed,
            "level": o.level,
            "compare_method": o.compare_method,
            "unpaired_reference": o.unpaired_reference,
            "adjust": o.adjust,
            "strict": o.strict,
        },
        "task_definitions": [
            {
                "task": t.name,
                "column": t.column,
                "positives": list(t.positives),
                "negatives": None if t.negatives is None else list(t.negatives),
            }
            for t in study.task_specs
        ],
        "scores": [
            {"score": s.name, "missing": s.missing, "non_numeric": s.non_numeric}
            for s in study.scores
        ],
        "tasks": [task_dict(r) for r in study.tasks],
        "comparisons": [comparison_dict(c) for c in study.comparisons],
        "subgroups": [
            {
                "variable": s.variable,
                "unassigned": s.unassigned,
                "groups": [
                    {"group": g.label, "n": g.n, "tasks": [task_dict(t) for t in g.tasks]}
                    for g in s.groups
                ],
                "comparisons": [comparison_dict(c) for c in s.comparisons],
            }
            for s in study.subgroups
        ],
    }
