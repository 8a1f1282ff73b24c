"""Command-line interface: ``pneumolens analyze | evaluate | evaluate-seg | segment-slices | train``.

Each sub-command lives beside the code it drives and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (``args -> int`` exit code). This module only wires them up and turns
:class:`~pneumolens.errors.InputError` into exit code 2 with a one-paragraph message and no
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pneumolens import __version__
from pneumolens.errors import InputError, ModelError

# Modules that contribute sub-commands; imported lazily so a missing optional extra only
# breaks its own command.
COMMAND_MODULES = (
    "pneumolens.commands.analyze",
    "pneumolens.validate.cli",
    "pneumolens.train.cli",
    "pneumolens.lesions.cli",
    "pneumolens.service.cli",
)

EXIT_INPUT_ERROR = 2
EXIT_MODEL_ERROR = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pneumolens", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pneumolens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("pneumolens"):
                continue  # command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_INPUT_ERROR
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"pneumolens {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except ModelError as exc:
        print(f"pneumolens {args.command}: model error: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
