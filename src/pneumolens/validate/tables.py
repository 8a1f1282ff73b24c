"""Paper-style tables: Table 2 (per task) and Table 3 (per subgroup), as rows, CSV and Markdown.

Numbers are formatted as radiology journals print them: AUC with three decimals and its 95 % CI,
sensitivity and specificity in percent with the exact CI and the counts.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from pneumolens.validate.study import Comparison, StudyResult, TaskResult

DASH = "\u2013"  # en dash between CI bounds, so a negative bound stays readable


def fmt_num(x: float | None, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "NA"
    return f"{x:.{digits}f}"


def fmt_ci(
    value: float, ci: tuple[float, float] | None, *, digits: int = 3, scale: float = 1.0
) -> str:
    """``0.731 (0.630–0.833)``; ``NA`` pieces where undefined."""
    if value is None or not math.isfinite(value):
        return "NA"
    text = fmt_num(value * scale, digits)
    if ci is None or not all(c is not None and math.isfinite(c) for c in ci):
        return text
    # "to" instead of a dash when a bound is negative, so "-0.17 to -0.01" cannot be misread.
    sep = " to " if min(ci) < 0 else DASH
    return f"{text} ({fmt_num(ci[0] * scale, digits)}{sep}{fmt_num(ci[1] * scale, digits)})"


def fmt_p(p: float | None) -> str:
    """p-values as journals print them: ``<.001``, else three decimals."""
    if p is None or not math.isfinite(p):
        return "NA"
    return "<.001" if p < 0.001 else f"{p:.3f}"


def _threshold(r: TaskResult) -> str:
    op = r.operating_point
    if op is None:
        return "NA"
    sign = ">=" if op.direction == "<" else "<="
    return f"{sign} {op.threshold:.4g}"


def _proportion(p, *, digits: int = 1) -> str:
    text = fmt_ci(p.value, p.ci, digits=digits, scale=100.0)
    return f"{text} [{p.successes}/{p.trials}]" if p.trials else "NA"


def task_row(r: TaskResult) -> dict[str, str]:
    op = r.operating_point
    return {
        "Task": r.task,
        "Score": r.score,
        "Positives": str(r.positives),
        "Negatives": str(r.negatives),
        "Threshold": _threshold(r),
        "AUC (95% CI)": fmt_ci(r.auc, r.auc_ci),
        "Sensitivity, % (95% CI)": "NA" if op is None else _proportion(op.metrics.sensitivity),
        "Specificity, % (95% CI)": "NA" if op is None else _proportion(op.metrics.specificity),
    }


def table2_rows(study: StudyResult) -> list[dict[str, str]]:
    """One row per task x score (the paper's Table 2)."""
    return [task_row(r) for r in study.tasks]


def comparison_rows(comparisons: Sequence[Comparison]) -> list[dict[str, str]]:
    rows = []
    for c in comparisons:
        res = c.result
        rows.append(
            {
                "Task": c.task,
                "Score": c.score,
                "A": c.a,
                "B": c.b,
                "Method": "NA" if res is None else res.method,
                "Difference (95% CI)": "NA"
                if res is None
                else fmt_ci(res.difference, res.difference_ci),
                "Statistic": "NA" if res is None else fmt_num(res.statistic, 3),
                "df": "" if res is None or res.df is None else fmt_num(res.df, 1),
                "P": "NA" if res is None else fmt_p(res.p_value),
                f"P ({c.adjust})": fmt_p(c.p_adjusted),
            }
        )
    return rows


def table3_rows(study: StudyResult) -> list[dict[str, str]]:
    """One row per subgroup variable x group x task x score, with that group's pairwise P values
    (the paper's Table 3)."""
    rows = []
    for sub in study.subgroups:
        for g in sub.groups:
            for r in g.tasks:
                ps = [
                    f"vs {c.b if c.a == g.label else c.a}: {fmt_p(c.result.p_value if c.result else None)}"
                    + (
                        f" (adj. {fmt_p(c.p_adjusted)})"
                        if c.adjust != "none" and len(sub.groups) > 2
                        else ""
                    )
                    for c in sub.comparisons
                    if c.task == r.task and c.score == r.score and g.label in (c.a, c.b)
                ]
                row = {"Subgroup": sub.variable, "Group": g.label}
                row.update(task_row(r))
                row.pop("Threshold")
                row["P (vs other groups)"] = "; ".join(ps)
                rows.append(row)
    return rows


def to_csv(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_markdown(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "_(no rows)_\n"
    cols = list(rows[0])

    def esc(s: str) -> str:
        return str(s).replace("|", "\\|")

    lines = [
        "| " + " | ".join(esc(c) for c in cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    lines += ["| " + " | ".join(esc(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"
