"""Options shared by several commands, so each has one spelling, one help text and one rule."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` (required) and ``--overwrite``, with the rule of
    :func:`pneumolens.export.writer.output_dir`."""
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR",
        help="output folder (created; must be new or empty unless --overwrite)",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace a non-empty --out folder as a whole (nothing of the earlier run stays)",
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--weights FILE|NAME`` (other ONNX weights with their sidecar), ``--threads N`` and ``--no-tta``."""
    parser.add_argument(
        "--weights", type=Path, default=None, metavar="FILE|NAME",
        help="other lesion weights: an ONNX file with its .json sidecar beside it, or a shipped model's name "
        "(e.g. lesion_unet2d_allpatients; docs/models/lesion_unet2d.md)",
    )
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="threads for model inference (0: all cores)")
    parser.add_argument("--no-tta", action="store_true",
                        help="no flip test-time augmentation of the lesion model (half its time, lower Dice)")


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bar on stderr."""
    parser.add_argument("--no-progress", action="store_true", help="do not show progress bars")


def tell(message: str) -> None:
    """A message for the person at the terminal: to stderr (stdout is for data)."""
    print(message, file=sys.stderr)
