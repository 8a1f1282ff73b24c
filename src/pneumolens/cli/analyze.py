"""``pneumolens analyze INPUT --out DIR``: the main job on one chest CT."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pneumolens.cli.options import (
    add_model_options,
    add_output_options,
    add_progress_option,
    tell,
)
from pneumolens.config import DEFAULT_METHOD, METHODS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="analyse one chest CT (DICOM folder/zip/files, NIfTI, NRRD, MHA)",
        description="Segment lungs and lesions in one chest CT, quantify them and write "
        "analysis.json, NIfTI masks and an HTML report.",
    )
    p.add_argument("input", nargs="+", type=Path, help="DICOM folder, zip, DICOM files, or a NIfTI/NRRD/MHA file")
    add_output_options(p)
    p.add_argument("--method", choices=METHODS, default=None,
                   help=f"lesion method (default: {DEFAULT_METHOD})")
    add_model_options(p)
    p.add_argument("--series", default=None, metavar="UID",
                   help="SeriesInstanceUID to analyse when the input holds several patients or studies")
    p.add_argument("--patient", default=None, metavar="ID",
                   help="PatientID to analyse when the input holds several patients")
    p.add_argument("--regions", choices=("lobes", "zones", "none"), default="lobes",
                   help="divide the lungs for per-region findings and scores: the five lobes (default; lobe "
                   "model, or --lobes FILE), zones (upper/middle/lower thirds of each lung by volume), or none")
    p.add_argument("--lobes", type=Path, default=None, metavar="FILE",
                   help="a lobe label map made elsewhere (NIfTI/NRRD/MHA on this series' grid: TotalSegmentator, "
                   "lungmask LTRCLobes, or 1 RUL 2 RML 3 RLL 4 LUL 5 LLL), used instead of the lobe model")
    p.add_argument("--lobes-convention", default="auto",
                   choices=("auto", "pneumolens", "lungmask", "totalsegmentator", "totalsegmentator_v1"),
                   help="label values of --lobes FILE (default: auto, the convention whose lobes fit the lungs)")
    p.add_argument("--classifier", type=Path, default=None, metavar="FILE",
                   help="cohort classifier made by 'pneumolens train classifier' (its probability is "
                   "reported and replaces p_pneumonia or p_viral, as it was trained to)")
    p.add_argument("--triage", default="", metavar="NAME=VALUE[,...]",
                   help="triage thresholds, e.g. urgent_lesion_percent=20,high_region_score=2 "
                   "(names and defaults in docs/methods.md)")
    p.add_argument("--json", action="store_true", help="also print analysis.json to stdout")
    p.add_argument("--uncompressed-masks", action="store_true",
                   help="write the masks as .nii instead of .nii.gz (faster, about 20x larger)")
    p.add_argument("--dicom", action="store_true",
                   help="also write DICOM SEG, TID 1500 SR and secondary captures under OUT/dicom/ "
                   "(DICOM input only; docs/dicom-outputs.md)")
    add_progress_option(p)
    p.set_defaults(func=run)


def _method(args: argparse.Namespace) -> str:
    """``--weights`` implies the model; asking for both density and weights is a contradiction."""
    from pneumolens.errors import InputError

    if args.weights is not None:
        if args.method == "density":
            raise InputError("--weights was given with --method density, which uses no weights",
                             todo="drop --weights, or use --method model")
        from pneumolens import models

        shipped = models.available()
        if not args.weights.is_file() and str(args.weights) not in shipped:
            raise InputError(f"the weights file does not exist: {args.weights}",
                             todo=f"pass the path of an .onnx file or a shipped name ({', '.join(shipped)})")
        return "model"
    return args.method or DEFAULT_METHOD


def _lobes_file(args: argparse.Namespace) -> Path | None:
    """``--lobes FILE`` must exist and goes with ``--regions lobes`` only (checked before any work)."""
    from pneumolens.errors import InputError

    if args.lobes is None:
        return None
    if args.regions != "lobes":
        raise InputError(f"--lobes was given with --regions {args.regions}",
                         todo="drop --lobes, or use --regions lobes")
    if not args.lobes.is_file():
        raise InputError("the lobe map given with --lobes does not exist", where=args.lobes,
                         todo="pass the path of a NIfTI/NRRD/MHA lobe label map")
    return args.lobes


def _score_text(data: dict) -> str:
    scores = data.get("scores") or {}
    if scores.get("ct_severity_0_25") is None:
        return ""
    return f"; CT severity {scores['ct_severity_0_25']}/25, PO {scores['po_percent']:.1f} %, PHO {scores['pho_percent']:.1f} %"


def _classifier(args: argparse.Namespace) -> Path | None:
    """``--classifier FILE``: read and checked now, before minutes of analysis."""
    if args.classifier is None:
        return None
    from pneumolens.classifier import load_classifier

    load_classifier(args.classifier)
    return args.classifier


def _triage(text: str) -> dict[str, str]:
    """``--triage a=1,b=2`` as a checked mapping (an unknown name or bad value is an input error)."""
    from pneumolens.assessment import TriageThresholds
    from pneumolens.errors import InputError

    values = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--triage item {item!r} is not NAME=VALUE", todo="write e.g. --triage urgent_lesion_percent=20")
        values[name.strip()] = value.strip()
    try:
        TriageThresholds.from_mapping(values)
    except ValueError as exc:
        raise InputError(f"--triage: {exc}", todo="see docs/methods.md (Triage) for the names") from None
    return values


def _check_dicom_input(inputs: list[Path]) -> None:
    """``--dicom`` needs DICOM input: refuse a NIfTI/NRRD/MHA file before the analysis runs."""
    from pneumolens.errors import InputError
    from pneumolens.io.volume_read import volume_format

    for path in inputs:
        if path.is_file() and volume_format(path) is not None:
            raise InputError(
                f"--dicom needs a DICOM input, but this is a {volume_format(path)} file",
                where=path,
                todo="run without --dicom, or analyse the original DICOM series (a DICOM SEG and SR "
                "must reference the source images, which a volume file does not have)",
            )


def run(args: argparse.Namespace) -> int:
    from pneumolens.config import Config
    from pneumolens.export.outputs import write_outputs
    from pneumolens.export.writer import check_out_dir
    from pneumolens.pipeline import STAGES, analyzed

    check_out_dir(args.out, overwrite=args.overwrite, inputs=args.input)  # fail before minutes of work
    if args.dicom:
        _check_dicom_input(args.input)
    config = Config(
        method=_method(args), lesion_weights=args.weights, threads=args.threads, lesion_tta=not args.no_tta,
        classifier=_classifier(args), triage=_triage(args.triage),
        regions=args.regions, lobes_file=_lobes_file(args), lobes_convention=args.lobes_convention,
    )
    source = args.input[0] if len(args.input) == 1 else list(args.input)

    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(STAGES) + 1, desc="analyze", unit="stage", file=sys.stderr, leave=False)

    def progress(stage: str, index: int, total: int) -> None:
        if bar is not None:
            bar.set_description(f"analyze: {stage}")
            bar.n = index
            bar.refresh()

    try:
        with analyzed(source, config, progress=progress, series=args.series, patient=args.patient) as analysis:
            progress("writing outputs", len(STAGES), len(STAGES))  # a zip's files stay until written
            data = write_outputs(analysis, args.out, overwrite=args.overwrite, inputs=args.input,
                                 compress_masks=not args.uncompressed_masks, dicom=args.dicom)
    finally:
        if bar is not None:
            bar.close()
    lesions = data["lesions"]
    tell(
        f"lungs {data['lungs']['total_ml']:.0f} mL; lesions {lesions['volume_ml']:.1f} mL "
        f"({lesions['percent_of_lungs']:.2f} % of lungs; GGO {lesions['ggo_ml']:.1f} mL, "
        f"consolidation {lesions['consolidation_ml']:.1f} mL) [{lesions['method']}]"
        + _score_text(data) + f" -> {args.out}"
    )
    a = data.get("assessment")
    if a:
        tell(
            f"assessment: {a['category']} (CO-RADS {a['co_rads']}); p(pneumonia) {a['p_pneumonia']:.2f}, "
            f"p(viral) {a['p_viral']:.2f}; priority {a['priority']}{' ALERT' if a['alert'] else ''}"
        )
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0
