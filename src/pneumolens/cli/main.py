"""``pneumolens COMMAND ...``: wires the command modules and maps errors to exit codes.

A command is added by writing a module ``pneumolens/cli/<command>.py`` with
``register(subparsers)`` (which adds its parser and sets ``func``: ``args -> int`` exit code) and
listing it in :data:`COMMAND_MODULES`. A listed module that fails to import is an error of the
installation (exit code 1 with the reason), never a silently missing command; optional extras
(torch for ``train``) are imported inside the command's ``func`` instead.

Output conventions: results meant for programs (``--json``, reports) go to stdout; messages for
people (progress, summaries, warnings, errors) go to stderr. Exit codes: 0 success, 1 broken
installation, 2 bad input (:class:`~pneumolens.errors.InputError`, no traceback, no partial
output), 3 model error (:class:`~pneumolens.errors.ModelError`), 130 interrupted by Ctrl-C and
143 by SIGTERM (one line, no traceback; temporary and staging folders removed, no output).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from pneumolens import __version__
from pneumolens.errors import InputError, ModelError
from pneumolens.runtime import prepare_for_analyses

#: The command modules, in the order of ``pneumolens --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "pneumolens.cli.analyze",
    "pneumolens.cli.evaluate",
    "pneumolens.cli.evaluate_seg",
    "pneumolens.cli.segment_slices",
    "pneumolens.cli.train",
    "pneumolens.cli.deidentify",
    "pneumolens.cli.serve",
)

EXIT_BROKEN_INSTALL = 1
EXIT_INPUT_ERROR = 2
EXIT_MODEL_ERROR = 3
#: Ctrl-C (SIGINT) and SIGTERM: 128 + the signal number, as shells report them.
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


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
    prepare_for_analyses()
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_INPUT_ERROR
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        with terminate_as_exception():
            return int(args.func(args) or 0)
    except InputError as exc:
        print(f"pneumolens {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except ModelError as exc:
        print(f"pneumolens {args.command}: model error: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    except KeyboardInterrupt:
        print(f"pneumolens {args.command}: interrupted (Ctrl-C); no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print(f"pneumolens {args.command}: terminated (SIGTERM); no output was written", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        from pneumolens.export.writer import release_all

        release_all()


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` (temporary folders, staging
    folders, locks) runs before the process exits."""


@contextlib.contextmanager
def terminate_as_exception() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
