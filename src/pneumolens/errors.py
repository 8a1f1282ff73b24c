"""Errors raised by pneumolens.

Every error meant for a user says what is wrong, where (file or series, never a patient
identifier) and what to do next. The CLI turns :class:`InputError` into exit code 2 with the
message and no traceback.
"""

from __future__ import annotations

from pathlib import Path


class PneumolensError(Exception):
    """Base class of all pneumolens errors."""


class InputError(PneumolensError, ValueError):
    """The input cannot be analysed.

    Parameters
    ----------
    what
        What is wrong, with the value received where useful.
    where
        The file, folder or series concerned (never a patient identifier).
    todo
        What the user can do about it.
    """

    def __init__(self, what: str, *, where: str | Path | None = None, todo: str | None = None):
        self.what = what
        self.where = None if where is None else str(where)
        self.todo = todo
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [self.what.rstrip(".") + "."]
        if self.where:
            parts.append(f"Where: {self.where}.")
        if self.todo:
            parts.append(f"What to do: {self.todo.rstrip('.')}.")
        return " ".join(parts)


class ModelError(PneumolensError):
    """A model's weights are missing, corrupt (checksum mismatch) or incompatible."""
