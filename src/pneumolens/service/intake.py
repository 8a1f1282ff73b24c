"""Receiving images: the DICOM C-STORE receiver (SCP) and the rules shared with the Orthanc link.

An image is written to ``DATA_DIR/incoming/<study>/<series>/<sop>.dcm`` (temporary name, then
renamed) and recorded in the store *before* the sender is answered "success", so an image the
sender believes delivered is never lost. Series that are not CT, or whose Body Part Examined
names another region, are recorded as skipped with the reason and their pixels are not kept.

DICOM PS3.4 B.2.3 (C-STORE status codes): 0x0000 success, 0xA700 out of resources,
0xC000 cannot understand (malformed data set, missing UIDs).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pneumolens.service.store import Store

logger = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000

#: Body Part Examined values (PS3.16 CID 4031 code meanings as modalities write them) that
#: contain the lungs. A series without the attribute is accepted; the analysis checks the anatomy.
CHEST_BODY_PARTS = frozenset({
    "CHEST", "LUNG", "LUNGS", "THORAX", "TORSO", "CHESTABDOMEN", "CHEST_ABDOMEN", "CHESTABDPELVIS",
    "CHEST_ABDOMEN_PELVIS", "THORAXABDOMEN", "WHOLEBODY", "WHOLE BODY", "BODY", "TRUNK", "HEART",
    "MEDIASTINUM", "PLEURA", "RIB", "RIBS",
})

_SAFE = re.compile(r"[^0-9A-Za-z.\-]")


@dataclass(frozen=True)
class ImageKey:
    """The identifiers of one received image, and why its series is skipped (if it is)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str | None
    body_part: str | None
    skip_reason: str | None = None


def skip_reason(modality: str | None, body_part: str | None) -> str | None:
    """Why a series with this Modality and Body Part Examined is not analysed (None: it is)."""
    if (modality or "").upper() != "CT":
        return f"modality {modality or 'missing'}, not CT"
    part = (body_part or "").strip().upper()
    if part and part not in CHEST_BODY_PARTS:
        return f"body part examined {part}, not chest"
    return None


def image_key(dataset) -> ImageKey:
    """Read the UIDs, Modality and Body Part Examined of a (possibly deferred-read) data set.

    Raises ``ValueError`` naming the missing attribute when the data set cannot be filed.
    """
    values = {}
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = str(getattr(dataset, keyword, "") or "").strip()
        if not value or len(value) > 64:
            raise ValueError(f"{keyword} is missing or invalid")
        values[keyword] = value
    modality = str(getattr(dataset, "Modality", "") or "") or None
    body_part = str(getattr(dataset, "BodyPartExamined", "") or "") or None
    return ImageKey(values["StudyInstanceUID"], values["SeriesInstanceUID"], values["SOPInstanceUID"],
                    modality, body_part, skip_reason(modality, body_part))


def image_path(data_dir: Path, key: ImageKey) -> Path:
    return data_dir / "incoming" / _SAFE.sub("_", key.study_uid) / _SAFE.sub("_", key.series_uid) / (
        _SAFE.sub("_", key.sop_uid) + ".dcm")


def file_image(store: Store, data_dir: Path, key: ImageKey, write: Callable[[Path], None], *,
               source: str, orthanc_id: str | None = None) -> bool:
    """Write the image (unless its series is skipped) and record it; False if it was known."""
    path = image_path(data_dir, key)
    if key.skip_reason is None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        write(tmp)
        os.replace(tmp, path)
    return store.add_instance(study_uid=key.study_uid, series_uid=key.series_uid, sop_uid=key.sop_uid,
                              path=path, modality=key.modality, body_part=key.body_part, source=source,
                              skip_reason=key.skip_reason, orthanc_id=orthanc_id)


def _no_delay(event) -> None:
    """Answer each C-STORE at once (no Nagle delay on our small responses)."""
    try:
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass


@dataclass
class StorageSCP:
    """A C-STORE receiver for every storage SOP class (pynetdicom), filing images into ``store``.

    Parameters
    ----------
    store, data_dir
        Where images are recorded and written.
    ae_title, host, port
        Our AE title and listening address (127.0.0.1 unless configured otherwise).
    allowed_ae_titles
        Calling AE titles that may associate; others are rejected at association time
        (PS3.8 A-ASSOCIATE-RJ, reason "calling AE title not recognized"). Empty: anyone.
    complete_on_release
        Treat the series an association sent as complete when the association is released.
    on_release
        Called with the series UIDs an association sent, when it is released.
    """

    store: Store
    data_dir: Path
    ae_title: str = "PNEUMOLENS"
    host: str = "127.0.0.1"
    port: int = 11112
    allowed_ae_titles: tuple[str, ...] = ()
    on_release: Callable[[tuple[str, ...]], None] | None = None
    _server: object = field(default=None, init=False, repr=False)
    _sent: dict = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def start(self) -> None:
        from pynetdicom import (
            AE,
            ALL_TRANSFER_SYNTAXES,
            AllStoragePresentationContexts,
            evt,
        )
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.ae_title)
        for context in AllStoragePresentationContexts:  # compressed images too (JPEG Lossless, ...)
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_called_aet = True
        if self.allowed_ae_titles:
            ae.require_calling_aet = list(self.allowed_ae_titles)
        ae.maximum_associations = 32  # more callers wait for a free slot
        handlers = [(evt.EVT_CONN_OPEN, _no_delay), (evt.EVT_C_STORE, self._on_store), (evt.EVT_RELEASED, self._on_release),
                    (evt.EVT_ABORTED, self._on_release), (evt.EVT_REJECTED, self._on_rejected)]
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        self.port = self._server.server_address[1]
        logger.info("DICOM receiver %s listening on %s:%d", self.ae_title, self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_store(self, event) -> int:
        try:
            dataset = event.dataset
            dataset.file_meta = event.file_meta
            key = image_key(dataset)
        except Exception as exc:  # noqa: BLE001 - any undecodable data set gets "cannot understand"
            logger.warning("refused an image from %s: cannot read it (%s)", event.assoc.requestor.ae_title,
                           type(exc).__name__ if not isinstance(exc, ValueError) else exc)
            return STATUS_CANNOT_UNDERSTAND

        def write(path: Path) -> None:
            path.write_bytes(event.encoded_dataset())  # preamble, file meta and the data set as sent

        try:
            file_image(self.store, self.data_dir, key, write, source="dicom")
        except OSError as exc:
            logger.error("could not store an image (%s): answering 'out of resources'", exc.strerror)
            return STATUS_OUT_OF_RESOURCES
        if key.skip_reason is None:
            with self._lock:
                self._sent.setdefault(id(event.assoc), set()).add(key.series_uid)
        return STATUS_SUCCESS

    def _on_release(self, event) -> None:
        with self._lock:
            series = tuple(sorted(self._sent.pop(id(event.assoc), ())))
        if series and self.on_release is not None:
            self.on_release(series)

    def _on_rejected(self, event) -> None:
        logger.warning("refused an association from AE title %r (not in the allow-list)",
                       event.assoc.requestor.ae_title)
