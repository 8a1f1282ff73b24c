"""``pneumolens train lesions --config FILE [--resume] [--export-only]``.

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
