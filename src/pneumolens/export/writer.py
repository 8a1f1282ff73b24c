"""The one atomic output writer: every command writes its output folder through it.

One rule for ``--out`` / ``--overwrite``, everywhere:

* ``--out`` that does not exist, or is an empty folder, is written;
* a non-empty ``--out`` is refused (:class:`~pneumolens.errors.InputError`, exit code 2) unless
  ``overwrite`` is set, and then it is **replaced as a whole**: no file of an earlier run stays
  beside the new ones;
* everything is written into a staging folder beside ``--out`` (same file system) and renamed
  into place only when the command succeeded, so a failure or an interruption leaves no partial
  output and the previous folder intact.

And, so that no run can lose data (issue 10), checked **before** the work starts
(:func:`check_out_dir`):

* ``--out`` is not a file, not below a file, not a broken symbolic link, on a writable file
  system with room for the outputs, and neither equal to, inside, nor around an input;
* ``--overwrite`` replaces only a folder a pneumolens command wrote: every output folder holds
  the marker file :data:`OUTPUT_MARKER`, and a non-empty folder without it is never deleted;
* one run at a time per output folder: a lock (``fcntl.flock`` on a file beside ``--out``,
  released by the system even when the process is killed) is taken at the check and held until
  the folder is in place;
* staging folders carry the temporary-folder marker of :mod:`pneumolens.tempfiles`; those left
  by a killed run (SIGKILL) are removed at the next run into the same place.

Usage::

    with output_dir(out, overwrite=overwrite) as tmp:
        (tmp / "report.json").write_text(...)
    # here ``out`` holds exactly what was written into ``tmp``
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pneumolens.errors import InputError
from pneumolens.tempfiles import MARKER, clean_stale, make_marked_dir

#: Marker file inside every output folder: ``--overwrite`` deletes only folders that hold it.
OUTPUT_MARKER = ".pneumolens-output"
#: Free space required beside ``--out`` when the command does not say: P002's analysis outputs
#: (masks, report with key images, analysis.json) take about 3 MB; this leaves a wide margin.
DEFAULT_EXPECTED_BYTES = 64 * 1024**2

_held_locks: dict[Path, int] = {}


def check_out_dir(
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    inputs: Sequence[str | Path] = (),
    expected_bytes: int = DEFAULT_EXPECTED_BYTES,
) -> Path:
    """Refuse an output folder that :func:`output_dir` would not write, and claim it for this
    run (a lock); return it as a Path.

    Commands call this before minutes of work, so a wrong ``--out`` fails at once.

    Parameters
    ----------
    out_dir
        The ``--out`` folder.
    overwrite
        ``--overwrite``: a non-empty folder is replaced, if pneumolens wrote it.
    inputs
        The command's input paths: ``out_dir`` may not be one of them, inside one, or hold one.
    expected_bytes
        Free space the outputs need on the file system of ``out_dir``.

    Raises
    ------
    InputError
        ``out_dir`` is a file, below a file, a broken symbolic link, not writable, short of
        space, overlaps an input, is a non-empty folder without ``overwrite`` (or, with it, one
        pneumolens did not write), or another run is writing it.
    """
    out = Path(out_dir)
    todo = "choose another --out"
    if out.is_symlink() and not out.exists():
        raise InputError("the output path is a broken symbolic link", where=out, todo=todo)
    if out.exists() and not out.is_dir():
        raise InputError("the output path exists and is not a folder", where=out, todo=todo)
    existing = _first_existing(out)
    if not existing.is_dir():
        raise InputError(
            f"the output folder would be created below {existing}, which is a file", where=out, todo=todo
        )
    _check_not_an_input(out, inputs)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(
                "the output folder is not empty", where=out, todo="choose a new --out folder or pass --overwrite"
            )
        if not (out / OUTPUT_MARKER).is_file():
            raise InputError(
                f"--overwrite replaces only a folder pneumolens wrote (it holds {OUTPUT_MARKER}); "
                "this folder does not, so nothing in it is deleted",
                where=out,
                todo="choose a new --out folder, or empty this one yourself if its content can go",
            )
    _check_writable(existing, out)
    free = shutil.disk_usage(existing).free
    if free < expected_bytes:
        raise InputError(
            f"the output file system has {free / 1024**2:.0f} MiB free; the outputs need about "
            f"{expected_bytes / 1024**2:.0f} MiB",
            where=out,
            todo="free disk space or choose an --out on another disk",
        )
    _lock(out)
    clean_stale(out.parent, f".{out.name}.")  # staging folders of a killed run
    return out


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    for candidate in (path, *path.absolute().parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _check_not_an_input(out: Path, inputs: Sequence[str | Path]) -> None:
    """``out`` may not be an input, inside one (``--overwrite`` would delete input files) or hold one."""
    target = out.resolve()
    for item in inputs:
        source = Path(item).resolve()
        if target == source or source in target.parents or target in source.parents:
            relation = "is" if target == source else "is inside" if source in target.parents else "holds"
            raise InputError(
                f"the output folder {relation} the input {item}; writing there could delete the input",
                where=out,
                todo="choose an --out folder outside the input",
            )


def _check_writable(existing: Path, out: Path) -> None:
    """Create and remove a file where ``out`` will be made (read-only mounts fail here)."""
    try:
        with tempfile.NamedTemporaryFile(prefix=".pneumolens-probe-", dir=existing):
            pass
    except OSError as exc:
        raise InputError(
            f"the output location is not writable ({exc.strerror or exc})",
            where=out,
            todo="choose an --out on a writable disk, or fix the folder's permissions",
        ) from None


def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.pneumolens-lock"


def _lock(out: Path) -> None:
    """Hold an exclusive lock for ``out`` until :func:`release` (or the process ends)."""
    key = out.absolute()
    if key in _held_locks:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    path = _lock_path(out)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                "another pneumolens run is writing this output folder",
                where=out,
                todo="wait for it to finish, or choose another --out",
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file its previous holder removed meanwhile
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _held_locks[key] = fd


def release(out_dir: str | Path) -> None:
    """Release this process's lock on ``out_dir`` (no-op when not held)."""
    out = Path(out_dir)
    fd = _held_locks.pop(out.absolute(), None)
    if fd is None:
        return
    try:
        _lock_path(out).unlink(missing_ok=True)
    finally:
        os.close(fd)


def release_all() -> None:
    """Release every output lock this process holds (the CLI does at the end of a command)."""
    for key in list(_held_locks):
        release(key)


@contextmanager
def output_dir(out_dir: str | Path, *, overwrite: bool = False, inputs: Sequence[str | Path] = ()) -> Iterator[Path]:
    """Stage a command's output folder and put it in place atomically on success.

    Parameters
    ----------
    out_dir
        The folder the user asked for (``--out``).
    overwrite
        Replace a non-empty ``out_dir`` (``--overwrite``) that pneumolens wrote; its old content
        is removed.
    inputs
        The command's inputs (see :func:`check_out_dir`).

    Yields
    ------
    Path
        An empty staging folder beside ``out_dir`` (it holds only the marker files); write
        every output file there.

    Raises
    ------
    InputError
        See :func:`check_out_dir` (checked before staging and again before the swap).
    """
    out = check_out_dir(out_dir, overwrite=overwrite, inputs=inputs, expected_bytes=0)
    try:
        tmp = make_marked_dir(f".{out.name}.", out.parent)
        try:
            (tmp / OUTPUT_MARKER).write_text("written by pneumolens; --overwrite may replace this folder\n")
            yield tmp
            (tmp / MARKER).unlink()
            _put_in_place(tmp, out, overwrite=overwrite)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        release(out)


def _put_in_place(tmp: Path, out: Path, *, overwrite: bool) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and then deleted."""
    check_out_dir(out, overwrite=overwrite, expected_bytes=0)  # the folder may have been filled meanwhile
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
    """Every file under ``folder``, sorted (what a command reports as written; not the marker)."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name not in (OUTPUT_MARKER, MARKER))
