"""``pneumolens evaluate-seg --pred DIR --truth DIR --out DIR``: Dice, IoU, HD95 of mask folders."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pneumolens.cli.options import add_output_options, tell
from pneumolens.errors import InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate-seg`` sub-command."""
    s = subparsers.add_parser(
        "evaluate-seg",
        help="Dice, IoU, sensitivity, precision, HD95 of predicted masks against truth masks",
        description="Pairs NIfTI or PNG masks by file name and writes per_case.csv, summary.csv/.md and seg_report.json.",
    )
    s.add_argument(
        "--pred", required=True, type=Path, metavar="DIR", help="folder of predicted masks"
    )
    s.add_argument("--truth", required=True, type=Path, metavar="DIR", help="folder of truth masks")
    s.add_argument(
        "--label",
        action="append",
        type=int,
        default=None,
        metavar="VALUE",
        help="label value to evaluate (repeat; default: any non-zero)",
    )
    s.add_argument(
        "--spacing", metavar="Z,Y,X", help="voxel spacing in mm, overriding the files (PNG: Y,X)"
    )
    s.add_argument(
        "--both-empty",
        choices=["one", "nan"],
        default="one",
        help="score when truth and prediction are both empty (default one)",
    )
    s.add_argument(
        "--strict", action="store_true", help="error when a case lacks its prediction or truth"
    )
    add_output_options(s)
    s.set_defaults(func=run_evaluate_seg)


def run_evaluate_seg(args: argparse.Namespace) -> int:
    from pneumolens.export.writer import check_out_dir
    from pneumolens.validate.seg_study import evaluate_folders, write_seg_study

    check_out_dir(args.out, overwrite=args.overwrite)
    spacing = None
    if args.spacing:
        try:
            spacing = tuple(float(v) for v in args.spacing.split(","))
        except ValueError:
            raise InputError(
                f"--spacing must be numbers separated by commas, got {args.spacing!r}"
            ) from None
    study = evaluate_folders(
        args.pred,
        args.truth,
        labels=args.label,
        spacing=spacing,
        both_empty=args.both_empty,
        strict=args.strict,
    )
    if study.only_pred or study.only_truth:
        log.warning(
            "%d truth file(s) without prediction and %d prediction(s) without truth were left out",
            len(study.only_truth),
            len(study.only_pred),
        )
    written = write_seg_study(study, args.out, overwrite=args.overwrite)
    tell(f"pneumolens evaluate-seg: {len({c.name for c in study.cases})} case(s), {len(written)} file(s) in {args.out}")
    return 0
