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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pneumolens.errors import InputError
from pneumolens.validate.bootstrap import bootstrap_ci
from pneumolens.validate.cases import (
    ScoreColumn,
    check_ids,
    norm_value,
    require_columns,
    score_column,
    subgroup_assignment,
)
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
from pneumolens.validate.specs import StudyOptions, SubgroupSpec, TaskSpec

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


def run_study(
    table: pd.DataFrame,
    *,
    truth: str,
    scores: list[str],
    tasks: list[TaskSpec],
    subgroups: list[SubgroupSpec] = (),
    options: StudyOptions | None = None,
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
    options = StudyOptions() if options is None else options
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
