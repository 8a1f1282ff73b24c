"""``pneumolens COMMAND ...``: wires the command modules and maps errors to exit codes.

A command is added by writing a module ``pneumolens/cli/<command>.py`` with
``register(subparsers)`` (which adds its parser and sets ``func``: ``args -> int`` exit code) and
listing it in :data:`COMMAND_MODULES`. A listed module that fails to import is an error of the
installation (exit code 1 with the reason), never a silently missing command; optional extras
(torch for ``train``) are imported inside the command's ``func`` instead.

Output conventions: results meant for programs (``--json``, reports) go to stdout; messages for
people (progress, summaries, warnings, errors) go to stderr. Exit codes: 0 success, 1 broken
installation, 2 bad input (:class:`~pneumolens.errors.InputError`, no traceback, no partial
output), 3 model error (:class:`~pneumolens.errors.ModelError`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pneumolens import __version__
from pneumolens.errors import InputError, ModelError

#: The command modules, in the order of ``pneumolens --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "pneumolens.cli.analyze",
    "pneumolens.cli.evaluate",
    "pneumolens.cli.evaluate_seg",
    "pneumolens.cli.segment_slices",
    "pneumolens.cli.train",
)

EXIT_BROKEN_INSTALL = 1
EXIT_INPUT_ERROR = 2
EXIT_MODEL_ERROR = 3


class CommandImportError(RuntimeError):
    """A command module listed in :data:`COMMAND_MODULES` cannot be imported."""


def build_parser(modules: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``pneumolens`` parser with the sub-command of every module in ``modules``
    (default :data:`COMMAND_MODULES`).

    Raises
    ------
    CommandImportError
        When a module fails to import or has no ``register``.
    """
    parser = argparse.ArgumentParser(
        prog="pneumolens", description="AI-assisted pneumonia analysis of chest CT (research software)."
    )
    parser.add_argument("--version", action="version", version=f"pneumolens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES if modules is None else modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # any failure: report which command and why, not a missing command
            raise CommandImportError(
                f"the command module {name} cannot be imported ({type(exc).__name__}: {exc}); "
                "the installation is incomplete or broken: reinstall pneumolens"
            ) from exc
        if not callable(getattr(module, "register", None)):
            raise CommandImportError(f"the command module {name} has no register(subparsers) function")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``pneumolens`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        parser = build_parser()
    except CommandImportError as exc:
        print(f"pneumolens: error: {exc}", file=sys.stderr)
        return EXIT_BROKEN_INSTALL
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_INPUT_ERROR
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
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
