"""Safe extraction of a zip of DICOM files into a temporary folder.

Before anything is written, the archive's directory is checked against limits derived from
the size of a CT series: the total, each member, each member's compression ratio, and for a
member larger than one CT slice, its DICOM header (read from the first bytes of the member):
a member bigger than its header's Rows x Columns x frames need is not extracted. The
extraction folder is marked and removed on every exit path
(:func:`pneumolens.tempfiles.marked_temp_dir`).
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from pneumolens import quality
from pneumolens.errors import InputError
from pneumolens.io.scan import SkippedItem
from pneumolens.tempfiles import marked_temp_dir

#: The largest CT image plane: 1024 x 1024 pixels of 16 bits (most CT is 512 x 512).
MAX_CT_SLICE_BYTES = 1024 * 1024 * 2
#: Header allowance per DICOM file (private tags of some scanners reach a few hundred kB).
MAX_HEADER_BYTES = 1024**2
#: Slices of the longest CT series expected: a thin-slice (0.5 mm) whole-body reconstruction.
MAX_CT_SLICES = 2000
#: One CT series at most: the limit of one member (a whole series in one multi-frame file).
MAX_SERIES_BYTES = MAX_CT_SLICES * (MAX_CT_SLICE_BYTES + MAX_HEADER_BYTES // 16)
#: A study exported with a few reconstructions: the limit of a whole archive.
MAX_UNCOMPRESSED_BYTES = 4 * MAX_SERIES_BYTES
#: DICOM deflates at most about 10:1 (air padding); a larger ratio on a big member is a zip bomb.
MAX_COMPRESSION_RATIO = 100.0
#: Members up to one slice file are extracted without looking into them.
PEEK_ABOVE_BYTES = MAX_CT_SLICE_BYTES + MAX_HEADER_BYTES
#: Bytes of a big member decompressed to read its DICOM header.
PEEK_BYTES = 4 * 1024**2


@contextmanager
def extraction_folder() -> Iterator[Path]:
    """A marked temporary folder for an archive's files, removed however the read ends."""
    with marked_temp_dir("pneumolens-zip-") as folder:
        yield folder


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
        check_archive_sizes(archive, members, folder)
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
            if member.file_size > PEEK_ABOVE_BYTES:
                reason = _oversized_member(zf, member)
                if reason:
                    skipped.append(SkippedItem(member.filename, reason))
                    continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                _copy_member(zf, member, target)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                # A damaged member is counted like an unreadable file; others may be fine.
                target.unlink(missing_ok=True)
                skipped.append(SkippedItem(member.filename, f"cannot be extracted ({type(exc).__name__})"))
    return tuple(skipped)


def check_archive_sizes(archive: Path, members: list[zipfile.ZipInfo], folder: Path) -> None:
    """Refuse an archive whose directory announces more than a CT study, a member bigger than a
    CT series, a zip-bomb compression ratio, or more than the free space of ``folder``."""
    total = sum(m.file_size for m in members)
    todo = "zip one CT series at a time, or give the unzipped folder"
    if total > MAX_UNCOMPRESSED_BYTES:
        raise InputError(
            f"the zip would expand to {total / 1024**3:.1f} GiB "
            f"(limit {MAX_UNCOMPRESSED_BYTES / 1024**3:.0f} GiB: a few CT series of "
            f"{MAX_CT_SLICES} slices of 1024x1024)",
            where=archive,
            todo=todo,
        )
    for m in members:
        if m.file_size > MAX_SERIES_BYTES:
            raise InputError(
                f"the zip member {m.filename} would expand to {m.file_size / 1024**3:.1f} GiB, more than "
                f"a whole CT series ({MAX_SERIES_BYTES / 1024**3:.1f} GiB)",
                where=archive,
                todo=todo,
            )
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size > PEEK_ABOVE_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise InputError(
                f"the zip member {m.filename} expands {ratio:.0f} times ({m.compress_size} bytes to "
                f"{m.file_size / 1024**2:.0f} MiB); DICOM images compress at most about 10 times, "
                "so this is not a CT image (a zip bomb or a damaged archive)",
                where=archive,
                todo="check where the archive came from; give the unzipped DICOM folder",
            )
    free = shutil.disk_usage(folder).free
    if total > free:
        raise InputError(
            f"the zip expands to {total / 1024**3:.2f} GiB but the temporary folder has only "
            f"{free / 1024**3:.2f} GiB free",
            where=folder,
            todo="free disk space or point TMPDIR to a larger disk, or give the unzipped folder",
        )


def _oversized_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo) -> str | None:
    """Why a member larger than one CT slice file is not extracted, or ``None`` when its DICOM
    header (read from its first bytes) accounts for its size."""
    from pneumolens.io.dicom_headers import lenient_pydicom, read_dataset

    with zf.open(member) as src:
        head = src.read(PEEK_BYTES)
    with tempfile.NamedTemporaryFile(suffix=".dcm") as tmp:
        tmp.write(head)
        tmp.flush()
        try:
            with lenient_pydicom():
                ds = read_dataset(Path(tmp.name), stop_before_pixels=True)
                expected = _expected_pixel_bytes(ds) if ds is not None else 0
        except Exception:  # noqa: BLE001 - a damaged header: judged like a non-DICOM member
            ds, expected = None, 0
    if ds is None or expected <= 0:
        return f"not extracted: {member.file_size / 1024**2:.0f} MiB without a DICOM image header"
    try:
        quality.check_file_size(member.file_size, expected, name=member.filename)
    except InputError as exc:
        raise InputError(exc.what, where=f"{member.filename} in {zf.filename}", todo=exc.todo) from None
    return None


def _expected_pixel_bytes(ds) -> int:
    values = [ds.get(k) for k in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated")]
    rows, columns, frames, samples, bits = (int(v) if v not in (None, "") else 1 for v in values)
    return rows * columns * max(frames, 1) * max(samples, 1) * max(bits, 1) // 8


def _copy_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path) -> None:
    """Copy one member, stopping if it yields more bytes than its directory entry announced."""
    written = 0
    with zf.open(member) as src, open(target, "wb") as dst:
        while chunk := src.read(1024 * 1024):
            written += len(chunk)
            if written > member.file_size:
                raise ValueError("member larger than announced")
            dst.write(chunk)
