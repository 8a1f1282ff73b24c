"""``pneumolens train lesions --config FILE [--resume] [--export-only]`` and
``pneumolens train classifier RESULTS.csv --label COLUMN --out DIR``.

Trains the recipe, exports the best checkpoint to ONNX, checks ONNX against torch, and writes the
model's JSON sidecar (checksum, normalisation, classes, data summary). Needs the ``train`` extra.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pneumolens.errors import InputError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model from a recipe (needs the 'train' extra)")
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    les = sub.add_parser("lesions", help="train the 2D lesion U-Net and export it to ONNX")
    les.add_argument("--config", required=True, type=Path, help="training recipe (TOML), e.g. configs/lesions.toml")
    les.add_argument("--resume", action="store_true", help="continue from last.pt in the run folder")
    les.add_argument("--no-progress", action="store_true", help="hide progress bars")
    les.add_argument("--export-only", action="store_true", help="skip training; export a checkpoint of the run")
    les.add_argument(
        "--checkpoint",
        choices=("last", "best"),
        default="last",
        help="which checkpoint to export: 'last' (default; no selection on the validation slices) "
        "or 'best' (best validation score, optimistic on those slices)",
    )
    les.set_defaults(func=_run_lesions)
    _register_classifier(sub)


def _register_classifier(sub: argparse._SubParsersAction) -> None:
    from pneumolens.cli.options import add_output_options

    clf = sub.add_parser(
        "classifier",
        help="fit a calibrated classifier on the features of your own labelled cohort (scikit-learn)",
        description="Nested cross-validation (logistic regression vs gradient boosting, Platt calibration) "
        "on a CSV of analysed cases, then a final fit; writes classifier.joblib, cv_predictions.csv "
        "(for 'pneumolens evaluate'), report.json and calibration.png.",
    )
    clf.add_argument("results", type=Path, help="CSV, one row per case: the feature columns and the label")
    clf.add_argument("--label", required=True, metavar="COLUMN", help="column with each case's reference label")
    clf.add_argument("--positive", default=None, metavar="VALUE[,VALUE]",
                     help="label value(s) counted as positive (default for 0/1 labels: 1)")
    clf.add_argument("--predicts", choices=("p_pneumonia", "p_viral", "none"), default="none",
                     help="which assessment probability 'analyze --classifier' replaces (default: none, reported only)")
    clf.add_argument("--name", default="cohort", help="name recorded in the file and in analysis.json")
    clf.add_argument("--id", dest="id_column", default=None, metavar="COLUMN", help="case id column")
    clf.add_argument("--folds", type=int, default=5, help="outer cross-validation folds (default 5)")
    clf.add_argument("--seed", type=int, default=0, help="random seed of the folds and the boosting")
    add_output_options(clf)
    clf.set_defaults(func=_run_classifier)


def _run_classifier(args: argparse.Namespace) -> int:
    from pneumolens.classifier import (
        read_cohort,
        train_classifier,
        write_training_outputs,
    )
    from pneumolens.cli.options import tell
    from pneumolens.export.writer import check_out_dir, output_dir

    check_out_dir(args.out, overwrite=args.overwrite)
    positive = None if args.positive is None else [v.strip() for v in args.positive.split(",") if v.strip()]
    cohort = read_cohort(args.results, label=args.label, positive=positive, id_column=args.id_column)
    clf, oof = train_classifier(cohort, name=args.name, predicts=args.predicts, outer_folds=args.folds, seed=args.seed)
    with output_dir(args.out, overwrite=args.overwrite) as tmp:
        report = write_training_outputs(clf, cohort, oof, tmp)
    cv = report["cv"]
    tell(
        f"{clf.name} {clf.version}: {cv['n_cases']} cases ({cv['n_positive']} positive); cross-validated AUC "
        f"{cv['auc']:.3f} (folds {', '.join(f'{a:.2f}' for a in cv['fold_auc'] if a is not None)}); "
        f"Brier {cv['brier']:.3f}; final model {cv['final_model']} -> {args.out}"
    )
    return 0


def _run_lesions(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise InputError(
            "training needs torch, which is not installed",
            todo="install the extra: pip install 'pneumolens[train]'",
        ) from None
    from pneumolens.train.config import load_config
    from pneumolens.train.export import export_recipe
    from pneumolens.train.lesions import train

    cfg = load_config(args.config)
    if not args.export_only:
        train(cfg, resume=args.resume, progress=not args.no_progress)
    checkpoint = cfg.out_dir() / f"{args.checkpoint}.pt"
    if not checkpoint.exists():
        raise InputError("no trained checkpoint to export", where=checkpoint, todo="train first (drop --export-only)")
    report = export_recipe(cfg, checkpoint)
    print(json.dumps(report, indent=2), file=sys.stdout)
    return 0
