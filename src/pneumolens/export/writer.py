"""The one atomic output writer: every command writes its output folder through it.

One rule for ``--out`` / ``--overwrite``, everywhere:

* ``--out`` that does not exist, or is an empty folder, is written;
* a non-empty ``--out`` is refused (:class:`~pneumolens.errors.InputError`, exit code 2) unless
  ``overwrite`` is set, and then it is **replaced as a whole**: no file of an earlier run stays
  beside the new ones;
* everything is written into a staging folder beside ``--out`` (same file system) and renamed
  into place only when the command succeeded, so a failure or an interruption leaves no partial
  output and the previous folder intact.

Usage::

    with output_dir(out, overwrite=overwrite) as tmp:
        (tmp / "report.json").write_text(...)
    # here ``out`` holds exactly what was written into ``tmp``
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pneumolens.errors import InputError


def check_out_dir(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Refuse an output folder that :func:`output_dir` would not write; return it as a Path.

    Commands call this before minutes of work, so a wrong ``--out`` fails at once.

    Raises
    ------
    InputError
        ``out_dir`` exists and is not a folder, or is a non-empty folder and ``overwrite`` is
        false.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("the output path exists and is not a folder", where=out, todo="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(
            "the output folder is not empty", where=out, todo="choose a new --out folder or pass --overwrite"
        )
    return out


@contextmanager
def output_dir(out_dir: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Stage a command's output folder and put it in place atomically on success.

    Parameters
    ----------
    out_dir
        The folder the user asked for (``--out``).
    overwrite
        Replace a non-empty ``out_dir`` (``--overwrite``); its old content is removed.

    Yields
    ------
    Path
        An empty staging folder beside ``out_dir``; write every output file there.

    Raises
    ------
    InputError
        See :func:`check_out_dir` (checked before staging and again before the swap).
    """
    out = check_out_dir(out_dir, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        _put_in_place(tmp, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _put_in_place(tmp: Path, out: Path, *, overwrite: bool) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and then deleted."""
    check_out_dir(out, overwrite=overwrite)  # the folder may have been filled meanwhile
    if not out.exists():
        tmp.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    old.rmdir()
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)  # put the previous results back
        raise
    shutil.rmtree(old, ignore_errors=True)


def files_in(folder: str | Path) -> list[Path]:
    """Every file under ``folder``, sorted (what a command reports as written)."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())
