"""``load_scan``: any supported CT input -> canonical :class:`CTScan`."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from pneumolens import quality
from pneumolens.errors import InputError
from pneumolens.io.archive import extract_zip, extraction_folder
from pneumolens.io.dicom_headers import Progress, scan_headers
from pneumolens.io.dicom_read import read_stack
from pneumolens.io.dicom_series import select_series
from pneumolens.io.scan import CTScan, SkippedItem
from pneumolens.io.volume_read import read_volume, volume_format
from pneumolens.tempfiles import marked_temp_dir

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


def load_scan(
    path: Any, *, progress: Progress | None = None, series: str | None = None, patient: str | None = None
) -> CTScan:
    """Read a chest CT from any supported input (see :func:`open_scan` for the inputs).

    Temporary files (a ``.zip``'s contents, in-memory datasets written out) are removed before
    this returns; use :func:`open_scan` to keep them readable while outputs are written.
    """
    with open_scan(path, progress=progress, series=series, patient=patient) as scan:
        return scan


@contextmanager
def open_scan(
    path: Any, *, progress: Progress | None = None, series: str | None = None, patient: str | None = None
) -> Iterator[CTScan]:
    """Read a chest CT and keep its source files readable until the ``with`` block ends.

    ``ScanInfo.source_root`` is the folder that holds ``ScanInfo.source_files`` during the block:
    for a ``.zip`` (extracted to a temporary folder) and in-memory datasets (written to one)
    that folder is deleted at the end of the block, so commands write their outputs inside it.

    Parameters
    ----------
    path
        One of: a folder of DICOM files (searched recursively; several series allowed), a
        ``.zip`` of such a folder, a list of DICOM files (or folders), one DICOM file
        (enhanced multi-frame CT), a NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``,
        ``.nhdr``) or MetaImage (``.mha``, ``.mhd``) volume, or in-memory pydicom ``Dataset``
        objects (one, or a list: e.g. received over DICOM C-STORE), which go through the same
        series selection and checks as files.
    progress
        Optional callback ``progress(stage, done, total)``, called while headers are read and
        slices decoded.
    series, patient
        SeriesInstanceUID or PatientID to analyse when a DICOM input holds several patients or
        studies (refused otherwise); ignored for NIfTI/NRRD/MHA.

    Returns
    -------
    CTScan
        ``int16`` HU volume on the canonical ``(Z, Y, X)`` LPS grid with its affine, the source
        affine and axis moves, and :class:`~pneumolens.io.scan.ScanInfo` (which series was
        chosen, what was skipped and why, warnings).

    Raises
    ------
    InputError
        When the input cannot be analysed; the message says what, where and what to do
        (see ``docs/input.md`` for every case).
    """
    pick = {"progress": progress, "series": series, "patient": patient}
    with ExitStack() as keep:
        yield _load(path, pick=pick, keep=keep)


def _load(path: Any, *, pick: dict, keep: ExitStack) -> CTScan:
    """:func:`open_scan`'s reading; temporary folders are registered on ``keep``; ``pick`` holds
    ``progress``, ``series`` and ``patient``."""
    if _is_dataset(path) or (isinstance(path, Sequence) and path and all(_is_dataset(p) for p in path)):
        return _load_datasets([path] if _is_dataset(path) else list(path), pick=pick, keep=keep)
    if isinstance(path, (str, os.PathLike)):
        source = Path(path)
        if not source.exists():
            raise InputError(
                "the input does not exist",
                where=source,
                todo="check the path (a DICOM folder, a .zip, or a NIfTI/NRRD/MHA file)",
            )
        if source.is_dir():
            return _load_dicom_files(_files_under(source), root=source, where=str(source), **pick)
        fmt = volume_format(source)
        if fmt is not None:
            return read_volume(source, fmt=fmt)
        if source.suffix.lower() == ".zip":
            return _load_zip(source, pick=pick, keep=keep)
        return _load_dicom_files([source], root=source.parent, where=str(source), **pick)

    items = [Path(p) for p in path]
    if not items:
        raise quality.empty_input("(an empty list of files)")
    missing = [p for p in items if not p.exists()]
    if missing:
        raise InputError(
            f"{len(missing)} of the {len(items)} given path(s) do not exist, e.g. {missing[0].name}",
            where=missing[0].parent,
            todo="check the file names",
        )
    if len(items) == 1:
        return _load(items[0], pick=pick, keep=keep)
    files = [f for p in items for f in (_files_under(p) if p.is_dir() else [p])]
    root = Path(os.path.commonpath([p.resolve() for p in items]))
    root = root if root.is_dir() else root.parent
    scan = _load_dicom_files(
        [f.resolve() for f in files], root=root, where=f"{len(items)} given paths under {root}", **pick
    )
    return replace(scan, info=replace(scan.info, path=str(root)))


def _files_under(folder: Path) -> list[Path]:
    """Every regular file below ``folder`` in a stable order, hidden files left out."""
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / name for name in sorted(filenames) if not name.startswith("."))
    return [f for f in files if f.is_file()]


def _load_zip(archive: Path, *, pick: dict, keep: ExitStack) -> CTScan:
    folder = keep.enter_context(extraction_folder())  # marked; removed however the block ends
    unsafe = extract_zip(archive, folder)
    scan = _load_dicom_files(_files_under(folder), root=folder, where=str(archive), extra_skipped=unsafe, **pick)
    return replace(scan, info=replace(scan.info, path=str(archive)))


def _is_dataset(value: object) -> bool:
    from pydicom.dataset import Dataset

    return isinstance(value, Dataset)


def _load_datasets(datasets: list, *, pick: dict, keep: ExitStack) -> CTScan:
    """In-memory datasets: written to a temporary folder and read like files (one path, one set of checks)."""
    import pydicom

    folder = keep.enter_context(marked_temp_dir("pneumolens-datasets-"))
    where = f"{len(datasets)} in-memory DICOM dataset(s)"
    for i, ds in enumerate(datasets):
        try:
            pydicom.dcmwrite(folder / f"{i:06d}.dcm", ds, enforce_file_format=False)
        except Exception as exc:  # noqa: BLE001 - pydicom raises several types for datasets it cannot encode
            raise InputError(
                f"dataset {i + 1} cannot be encoded ({type(exc).__name__}: {exc})",
                where=where,
                todo="give datasets as received (with their file_meta and transfer syntax)",
            ) from None
    scan = _load_dicom_files(_files_under(folder), root=folder, where=where, **pick)
    return replace(scan, info=replace(scan.info, path=where))


def _load_dicom_files(
    files: Sequence[Path],
    *,
    root: Path,
    where: str,
    progress: Progress | None,
    series: str | None = None,
    patient: str | None = None,
    extra_skipped: Sequence[SkippedItem] = (),
) -> CTScan:
    if not files:
        raise quality.empty_input(where)
    headers = scan_headers(files, root, progress=progress)
    if not headers.headers:
        if headers.non_image_modalities:  # e.g. only a structured report was exported
            raise quality.no_ct_series(where, list(headers.non_image_modalities))
        raise quality.no_dicom(where, headers.n_files, len(headers.unreadable))
    try:
        selection = select_series(headers.headers, where=where, series=series, patient=patient)
    except InputError as exc:
        if not headers.unreadable:
            raise
        # A file that could not be read may be the cause (a lost slice makes a gap): name it.
        names = ", ".join(u.item for u in headers.unreadable[:3])
        raise InputError(
            f"{exc.what} ({len(headers.unreadable)} file(s) could not be read: {names})",
            where=exc.where,
            todo=exc.todo,
        ) from None
    logger.info("analysing %s", selection.stack.where)
    scan = read_stack(
        selection.stack,
        path=where,
        skipped=list(extra_skipped) + list(headers.skipped) + list(selection.skipped),
        unreadable=headers.unreadable,
        progress=progress,
    )
    return replace(scan, info=replace(scan.info, source_root=str(root)))
