"""``pneumolens serve --config FILE``: run the PACS-side service (docs/service.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="receive chest CTs (DICOM / Orthanc), analyse them, alert on a web worklist",
        description="Run the service: DICOM receiver, Orthanc link, job queue, workers, web worklist "
        "and API. Settings in a TOML file (docs/service.md); the token may come from $PNEUMOLENS_TOKEN.",
    )
    p.add_argument("--config", type=Path, required=True, help="service settings (TOML, see docs/service.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pneumolens.errors import InputError

    try:
        from pneumolens.service.config import load_config
        from pneumolens.service.server import serve
    except ModuleNotFoundError as exc:
        raise InputError(f"the service needs the 'service' extra ({exc.name} is missing)",
                         todo="pip install 'pneumolens[service]'") from None
    serve(load_config(args.config))
    return 0
