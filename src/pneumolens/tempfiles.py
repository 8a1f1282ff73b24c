"""Temporary folders that never outlive a run: marked, removed on every exit path, and swept
at the next start when a run was killed (SIGKILL leaves no chance to clean up).

Every temporary folder pneumolens makes (zip extraction, output staging) holds a marker file
with the owner's process id, host and creation time. :func:`clean_stale` removes marked folders
whose owner is gone (same host, process not running) or that are older than
:data:`STALE_AFTER_S`; folders without the marker are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Name of the marker file inside every temporary folder pneumolens makes.
MARKER = ".pneumolens-temp"
#: A marked folder older than this is stale even if its process id is running (ids are reused).
STALE_AFTER_S = 24 * 3600.0


def make_marked_dir(prefix: str, parent: str | Path | None = None) -> Path:
    """Create an empty temporary folder carrying the marker (the marker is its only file)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (folder / MARKER).write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "created": time.time()})
    )
    return folder


@contextmanager
def marked_temp_dir(prefix: str, parent: str | Path | None = None) -> Iterator[Path]:
    """A marked temporary folder, removed when the block ends, however it ends.

    Stale folders of the same prefix in the same parent (left by a killed run) are removed
    first. SIGTERM reaches this ``finally`` only when the process turns it into an exception
    (the CLI does: :func:`pneumolens.cli.main.main`).
    """
    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    clean_stale(base, prefix)
    folder = make_marked_dir(prefix, base)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _owner_gone(info: dict) -> bool:
    if info.get("host") != socket.gethostname():
        return False  # another machine's process: only its age can tell
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError, KeyError, TypeError, ValueError):
        return False
    return False


def is_stale(folder: Path, *, now: float | None = None, max_age_s: float = STALE_AFTER_S) -> bool:
    """Whether ``folder`` is a marked pneumolens temporary folder whose run is over."""
    marker = folder / MARKER
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False  # no marker (or unreadable): not ours to delete
    now = time.time() if now is None else now
    created = info.get("created") if isinstance(info, dict) else None
    if not isinstance(created, (int, float)):
        return False
    return now - created > max_age_s or _owner_gone(info)


def clean_stale(parent: str | Path, prefix: str, *, max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the stale marked folders named ``prefix*`` in ``parent``; returns what was removed."""
    removed = []
    try:
        candidates = [p for p in Path(parent).iterdir() if p.name.startswith(prefix) and p.is_dir()]
    except OSError:
        return removed
    for folder in candidates:
        if is_stale(folder, max_age_s=max_age_s):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
