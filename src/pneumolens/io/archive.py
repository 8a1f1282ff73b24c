"""Safe extraction of a zip of DICOM files into a temporary folder."""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from pneumolens.errors import InputError
from pneumolens.io.scan import SkippedItem

#: Refuse archives that would expand beyond this (a zip bomb, or not a single CT).
MAX_UNCOMPRESSED_BYTES = 16 * 1024**3


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or ``None`` when it would escape the folder (zip-slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        return None
    return path


def extract_zip(archive: Path, folder: Path) -> tuple[SkippedItem, ...]:
    """Extract ``archive`` into ``folder``; members that could escape it are skipped.

    Returns the skipped members (absolute paths, ``..`` components, symbolic links).
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(
            f"the zip file cannot be opened ({exc})",
            where=archive,
            todo="check the download or copy is complete, or give the unzipped folder",
        ) from None
    skipped: list[SkippedItem] = []
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        total = sum(m.file_size for m in members)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise InputError(
                f"the zip would expand to {total / 1024**3:.1f} GiB "
                f"(limit {MAX_UNCOMPRESSED_BYTES / 1024**3:.0f} GiB)",
                where=archive,
                todo="zip one CT series at a time, or give the unzipped folder",
            )
        root = folder.resolve()
        for member in members:
            relative = _safe_member_path(member.filename)
            is_link = stat.S_ISLNK(member.external_attr >> 16)
            if relative is None or is_link:
                skipped.append(SkippedItem(member.filename, "unsafe zip member (absolute path, '..' or link)"))
                continue
            target = (root / relative).resolve()
            if root not in target.parents:
                skipped.append(SkippedItem(member.filename, "unsafe zip member (outside the folder)"))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                # A damaged member is counted like an unreadable file; others may be fine.
                target.unlink(missing_ok=True)
                skipped.append(SkippedItem(member.filename, f"cannot be extracted ({type(exc).__name__})"))
    return tuple(skipped)
