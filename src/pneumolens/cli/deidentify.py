"""``pneumolens deidentify IN OUT``: DICOM PS3.15 basic-profile de-identification of a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from pneumolens.cli.options import tell


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "deidentify",
        help="de-identify DICOM files (PS3.15 basic profile, consistent pseudonyms within the run)",
        description="Copy the DICOM files under IN to OUT de-identified by the DICOM PS3.15 Basic "
        "Application Level Confidentiality Profile: identifying attributes removed, emptied or "
        "replaced, private attributes removed, new UIDs and patient pseudonyms consistent within "
        "this run. Images with burned-in annotation are left out. See docs/dicom-outputs.md.",
    )
    p.add_argument("input", type=Path, help="DICOM folder (searched recursively) or file")
    p.add_argument("out", type=Path, help="output folder (created; must be new or empty unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT folder as a whole")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pneumolens.export.writer import check_out_dir, output_dir
    from pneumolens.io.deidentify import deidentify_files

    check_out_dir(args.out, overwrite=args.overwrite)
    with output_dir(args.out, overwrite=args.overwrite) as tmp:
        result = deidentify_files(args.input, tmp)
    for name, reason in result.skipped:
        tell(f"skipped {name}: {reason}")
    tell(f"{len(result.written)} file(s) de-identified -> {args.out} ({len(result.skipped)} skipped)")
    return 0
