"""``pneumolens evaluate CASES.csv --truth COL --score COL --out DIR``: a diagnostic accuracy study."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pneumolens.cli.options import add_output_options, tell
from pneumolens.errors import InputError

log = logging.getLogger(__name__)

EVALUATE_EPILOG = """\
examples:
  pneumolens evaluate asah.csv --truth outcome --positive Poor --score s100b --score wfns --out out/
  pneumolens evaluate cases.csv --truth diagnosis --positive covid,bacterial,other_viral,other \\
      --negative normal --reference normal \\
      --task "viral vs non-viral:diagnosis=covid,other_viral/bacterial,other" \\
      --score ai_score --subgroup sex --subgroup "age:<=40,>40" --subgroup vendor --out out/

tasks: NAME:COLUMN=POS1,POS2[/NEG1,NEG2][@SCORE1+SCORE2]; negatives default to every other value.
subgroups: COLUMN (each value a group) or COLUMN:<=40,>40 (numeric bins).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="ROC/AUC study from a CSV of cases (pROC-conformant), with tables and figures",
        description="Diagnostic accuracy study from one CSV: per task and score the AUC with 95%% CI, "
        "the operating point with exact CIs, paired comparisons of scores, subgroups with unpaired "
        "comparisons; writes report.json, Table 2/3 (CSV, Markdown), ROC figures and report.html.",
        epilog=EVALUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("cases", type=Path, help="CSV file, one row per case")
    p.add_argument("--truth", required=True, metavar="COL", help="reference-standard column")
    p.add_argument("--positive", metavar="VALUE[,VALUE]", help="truth value(s) counted as positive")
    p.add_argument(
        "--negative",
        metavar="VALUE[,VALUE]",
        help="truth value(s) counted as negative (default: all others)",
    )
    p.add_argument(
        "--reference",
        metavar="VALUE",
        help="add one task 'X vs VALUE' for every other truth value X",
    )
    p.add_argument(
        "--score",
        action="append",
        required=True,
        metavar="COL",
        help="score column (repeat for several)",
    )
    p.add_argument(
        "--task",
        action="append",
        default=[],
        metavar="SPEC",
        help="extra task NAME:COL=POS[/NEG][@SCORES]",
    )
    p.add_argument(
        "--subgroup",
        action="append",
        default=[],
        metavar="SPEC",
        help="subgroup COL or COL:<=40,>40",
    )
    p.add_argument(
        "--threshold",
        default="youden",
        metavar="youden|VALUE",
        help="operating point (default: youden)",
    )
    p.add_argument(
        "--direction",
        choices=["<", ">", "auto"],
        default="<",
        help="'<': higher score = positive (default); 'auto': pROC's median rule, with a warning",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="bootstrap replicates (0: none; default 0)",
    )
    p.add_argument(
        "--seed", type=int, default=None, metavar="N", help="random seed of the bootstrap"
    )
    p.add_argument(
        "--ci-method",
        choices=["delong", "bootstrap"],
        default="delong",
        help="AUC CI reported as auc_ci (default delong)",
    )
    p.add_argument(
        "--compare-method",
        choices=["delong", "bootstrap"],
        default="delong",
        help="AUC comparison test (default delong)",
    )
    p.add_argument(
        "--unpaired",
        choices=["t", "normal"],
        default="t",
        help="unpaired DeLong reference: pROC's Welch t (default) or MedCalc's normal z",
    )
    p.add_argument(
        "--adjust",
        choices=["holm", "bonferroni", "none"],
        default="holm",
        help="multiple-comparison adjustment (default holm)",
    )
    p.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument(
        "--id",
        dest="id_column",
        metavar="COL",
        help="case-id column, checked for duplicates (default: case_id if present)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="error on missing or non-numeric scores instead of dropping them",
    )
    add_output_options(p)
    p.set_defaults(func=run_evaluate)



def _values(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    from pneumolens.validate.cases import norm_value

    values = tuple(norm_value(v) for v in text.split(",") if v.strip())
    if not values:
        raise InputError(f"empty value list {text!r}")
    return values


def _threshold(text: str) -> str | float:
    if text.strip().lower() == "youden":
        return "youden"
    try:
        return float(text)
    except ValueError:
        raise InputError(f"--threshold must be 'youden' or a number, got {text!r}") from None


def run_evaluate(args: argparse.Namespace) -> int:
    from pneumolens.export.writer import check_out_dir
    from pneumolens.validate.cases import default_tasks, read_cases, require_columns
    from pneumolens.validate.report import write_study
    from pneumolens.validate.specs import StudyOptions, parse_subgroup, parse_task
    from pneumolens.validate.study import run_study

    check_out_dir(args.out, overwrite=args.overwrite)  # before the work, not after
    options = StudyOptions(
        threshold=_threshold(args.threshold),
        direction=args.direction,
        ci_method=args.ci_method,
        n_boot=args.bootstrap,
        seed=args.seed,
        level=args.level,
        compare_method=args.compare_method,
        unpaired_reference="normal" if args.unpaired == "normal" else "t",
        adjust=args.adjust,
        strict=args.strict,
    )
    extra_tasks = [parse_task(t) for t in args.task]
    subgroups = [parse_subgroup(g) for g in args.subgroup]
    table = read_cases(args.cases)
    id_column = args.id_column or ("case_id" if "case_id" in table.columns else None)
    require_columns(
        table,
        [
            args.truth,
            *args.score,
            *(t.column for t in extra_tasks),
            *(s for t in extra_tasks for s in t.scores or ()),
            *(g.column for g in subgroups),
            *([id_column] if id_column else []),
        ],
        where=args.cases,
    )
    tasks = default_tasks(
        table,
        args.truth,
        positive=_values(args.positive),
        negative=_values(args.negative),
        reference=None if args.reference is None else _values(args.reference)[0],
        where=args.cases,
    )
    tasks += extra_tasks
    study = run_study(
        table,
        truth=args.truth,
        scores=list(dict.fromkeys(args.score)),
        tasks=tasks,
        subgroups=subgroups,
        options=options,
        id_column=id_column,
        source=args.cases,
    )
    for s in study.scores:
        if s.missing or s.non_numeric:
            log.warning(
                "score %r: %d missing and %d non-numeric value(s) excluded",
                s.name,
                s.missing,
                s.non_numeric,
            )
    written = write_study(study, args.out, overwrite=args.overwrite)
    tell(f"pneumolens evaluate: {len(study.tasks)} task x score result(s), {len(written)} file(s) in {args.out}")
    return 0
