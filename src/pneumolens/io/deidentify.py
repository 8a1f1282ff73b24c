"""De-identify DICOM files: DICOM PS3.15 Basic Application Level Confidentiality Profile.

The attribute actions (X remove, Z empty, D dummy, U new UID and their combinations) are those
of PS3.15 Table E.1-1 as tabulated by the ``dicom-anonymizer`` package (its ``dicomfields_2026c``
table, taken from the standard); private attributes are removed. On top of that, within one
run (one :class:`Deidentifier`):

- every UID maps to one new UID (``2.25.<uuid>``, PS3.5 B.2), so the series, studies, frames of
  reference and references between objects stay consistent;
- PatientID and PatientName map to one pseudonym per original value (``PNL-`` and ten hex
  digits of an HMAC under a key drawn for the run): images of one patient stay together, two
  patients stay apart, and no two runs give the same pseudonym;
- PatientIdentityRemoved = YES, DeidentificationMethod and its code sequence (DCM 113100 Basic
  Application Confidentiality Profile) are set (PS3.15 E.1.1).

Images with BurnedInAnnotation = YES (secondary captures, screenshots) are not written: the
profile requires cleaning their pixels, which this command does not do. Output files are named
by their new UIDs, so no identifier survives in a path either.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pneumolens.errors import InputError

TABLE = "dicomfields_2026c"
PSEUDONYM_PREFIX = "PNL-"
METHOD = f"DICOM PS3.15 Basic Application Level Confidentiality Profile (pneumolens; table {TABLE})"
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
PATIENT_ID = (0x0010, 0x0020)
PATIENT_NAME = (0x0010, 0x0010)


def profile_actions() -> dict[tuple, Callable]:
    """Tag (or masked repeating-group tag) -> action, per PS3.15 Table E.1-1 basic profile."""
    from dicomanonymizer.simpledicomanonymizer import initialize_actions

    return initialize_actions(TABLE)


def listed_tags() -> list[tuple[int, int]]:
    """The single (non-repeating) tags PS3.15 Table E.1-1 lists for the basic profile."""
    return [tag for tag in profile_actions() if len(tag) == 2]


@dataclass
class Deidentifier:
    """One de-identification run: the UID map and the pseudonym key are kept for the run only."""

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    uids: dict[str, str] = field(default_factory=dict, repr=False)
    _made: set[str] = field(default_factory=set, repr=False)

    def new_uid(self, old: str) -> str:
        from pneumolens.export.dicom_common import new_uid

        old = str(old)
        if old in self._made:  # already one of this run's UIDs
            return old
        if old not in self.uids:
            self.uids[old] = new_uid()
            self._made.add(self.uids[old])
        return self.uids[old]

    def pseudonym(self, value: str) -> str:
        digest = hmac.new(self.key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:10].upper()

    # actions with the dicom-anonymizer signature ``action(dataset, tag)``
    def _replace_uid(self, dataset, tag) -> None:
        element = dataset.get(tag)
        if element is None or element.VR == "SQ" or element.value in (None, ""):
            return  # a sequence (U*): its UIDs are mapped by the nested walk
        if element.VM > 1:
            element.value = [self.new_uid(v) for v in element.value]
        else:
            element.value = self.new_uid(element.value)

    def _pseudonymise(self, dataset, tag) -> None:
        element = dataset.get(tag)
        if element is not None and str(element.value or ""):
            element.value = self.pseudonym(str(element.value))

    def _nested(self, dataset, element) -> None:
        """Everywhere, also inside sequences: instance UIDs (not the standard's own UIDs, e.g.
        SOP classes and transfer syntaxes) get their run UID; person names a pseudonym."""
        from pydicom.uid import UID

        if element.VR == "UI" and element.value:
            values = list(element.value) if element.VM > 1 else [element.value]
            mapped = [v if UID(str(v)).name != str(v) else self.new_uid(v) for v in values]
            element.value = mapped if element.VM > 1 else mapped[0]
        elif element.VR == "PN" and element.value and not str(element.value).startswith(PSEUDONYM_PREFIX):
            element.value = self.pseudonym(str(element.value))

    def actions(self) -> dict[tuple, Callable]:
        from dicomanonymizer import simpledicomanonymizer as sda

        actions = profile_actions()
        for tag, action in actions.items():
            if action in (sda.replace_UID, sda.delete_or_empty_or_replace_UID):
                actions[tag] = self._replace_uid
        actions[PATIENT_ID] = self._pseudonymise
        actions[PATIENT_NAME] = self._pseudonymise
        return actions

    def deidentify(self, dataset) -> None:
        """De-identify ``dataset`` in place (and its file meta information)."""
        from dicomanonymizer.simpledicomanonymizer import anonymize_dataset
        from pydicom.dataset import Dataset

        actions = self.actions()
        anonymize_dataset(dataset, base_rules_gen=lambda: actions, delete_private_tags=True)
        dataset.walk(self._nested)  # the table's actions apply at the top level only
        meta = getattr(dataset, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in dataset:
            meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = METHOD[:64]
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = BASIC_PROFILE_CODE
        dataset.DeidentificationMethodCodeSequence = [code]


@dataclass(frozen=True)
class DeidentifyResult:
    written: tuple[Path, ...]
    skipped: tuple[tuple[str, str], ...]  # (file relative to the input, reason)


def deidentify_files(source: Path, out: Path, *, run: Deidentifier | None = None) -> DeidentifyResult:
    """De-identify every DICOM file under ``source`` (a folder or one file) into ``out``.

    Files land at ``out/<new SeriesInstanceUID>/<new SOPInstanceUID>.dcm``. ``out`` must exist.

    Raises
    ------
    InputError
        When ``source`` does not exist or holds no DICOM file.
    """
    from pneumolens.io.dicom_headers import lenient_pydicom, read_dataset

    source = Path(source)
    if not source.exists():
        raise InputError("the input does not exist", where=source, todo="give a DICOM folder or file")
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")) if source.is_dir() \
        else [source]
    run = run or Deidentifier()
    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    with lenient_pydicom():
        for path in files:
            name = path.relative_to(source).as_posix() if source.is_dir() else path.name
            try:
                ds = read_dataset(path, stop_before_pixels=False)
            except Exception as exc:  # noqa: BLE001 - truncated files raise anything
                skipped.append((name, f"unreadable DICOM ({type(exc).__name__})"))
                continue
            if ds is None:
                skipped.append((name, "not a DICOM file"))
                continue
            if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
                skipped.append((name, "burned-in annotation: pixels would need cleaning (not done)"))
                continue
            run.deidentify(ds)
            target = out / str(ds.get("SeriesInstanceUID") or "no-series") / f"{ds.SOPInstanceUID}.dcm"
            target.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(target, enforce_file_format=True)
            written.append(target)
    if not written:
        raise InputError(
            f"no DICOM file could be de-identified ({len(files)} file(s) looked at)",
            where=source,
            todo="give a folder of DICOM files",
        )
    return DeidentifyResult(tuple(written), tuple(skipped))
