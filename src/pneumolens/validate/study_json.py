"""``report.json`` of a study: the JSON-ready dictionary of a :class:`~pneumolens.validate.study.StudyResult`."""

from __future__ import annotations

from pathlib import Path

from pneumolens.analysis import finite_or_none
from pneumolens.validate.operating import OperatingPoint
from pneumolens.validate.study import Comparison, StudyResult, TaskResult


def _pair(ci: tuple[float, float] | None) -> list | None:
    return None if ci is None else [finite_or_none(ci[0]), finite_or_none(ci[1])]


def operating_point_dict(op: OperatingPoint | None) -> dict | None:
    if op is None:
        return None
    m = op.metrics
    return {
        "rule": op.rule,
        "threshold": finite_or_none(op.threshold),
        "direction": op.direction,
        "positive_when": f"score {'>=' if op.direction == '<' else '<='} threshold",
        "n_tied": op.n_tied,
        "sensitivity": finite_or_none(m.sensitivity.value),
        "sensitivity_ci": _pair(m.sensitivity.ci),
        "specificity": finite_or_none(m.specificity.value),
        "specificity_ci": _pair(m.specificity.ci),
        "ppv": finite_or_none(m.ppv.value),
        "ppv_ci": _pair(m.ppv.ci),
        "npv": finite_or_none(m.npv.value),
        "npv_ci": _pair(m.npv.ci),
        "accuracy": finite_or_none(m.accuracy.value),
        "accuracy_ci": _pair(m.accuracy.ci),
        "lr_pos": finite_or_none(m.lr_pos),
        "lr_pos_ci": _pair(m.lr_pos_ci),
        "lr_neg": finite_or_none(m.lr_neg),
        "lr_neg_ci": _pair(m.lr_neg_ci),
        "youden_index": finite_or_none(op.youden_index),
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
        "auc": finite_or_none(r.auc),
        "auc_se": finite_or_none(r.auc_se),
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
        "statistic": None if res is None else finite_or_none(res.statistic),
        "df": None if res is None else finite_or_none(res.df),
        "p_value": None if res is None else finite_or_none(res.p_value),
        "p_adjusted": finite_or_none(c.p_adjusted),
        "adjust": c.adjust,
        "auc_a": None if res is None else finite_or_none(res.auc_a),
        "auc_b": None if res is None else finite_or_none(res.auc_b),
        "difference": None if res is None else finite_or_none(res.difference),
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
