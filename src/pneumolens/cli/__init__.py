"""Command-line interface: ``pneumolens COMMAND ...`` (see :mod:`pneumolens.cli.main`).

One module per command (``analyze``, ``evaluate``, ``evaluate_seg``, ``segment_slices``,
``train``), each with ``register(subparsers)``; shared options in :mod:`pneumolens.cli.options`;
every command writes its ``--out`` folder through :func:`pneumolens.export.writer.output_dir`.
"""

from pneumolens.cli.main import main

__all__ = ["main"]
