"""The link to Orthanc: store results into a study, and fetch new stable studies to analyse.

Orthanc REST API (https://orthanc.uclouvain.be/book/users/rest.html): ``POST /instances``
stores a DICOM file; ``GET /changes?since=N`` lists changes, among them ``StableStudy`` (no new
instance for ``StableAge`` seconds); ``/studies/{id}/series``, ``/series/{id}/instances`` and
``/instances/{id}/file`` fetch what a study holds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

import httpx

from pneumolens.service.intake import ImageKey, file_image, skip_reason
from pneumolens.service.store import Store

logger = logging.getLogger(__name__)

STATE_LAST_CHANGE = "orthanc.last_change"


class OrthancError(RuntimeError):
    """Orthanc refused a request or could not be reached."""


class OrthancClient:
    """A small REST client (httpx) for the calls the service needs."""

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None, timeout: float = 60):
        auth = (username, password) if username else None
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, auth=auth, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, **params) -> httpx.Response:
        try:
            response = self.http.get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise OrthancError(f"Orthanc at {self.url} cannot be reached ({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise OrthancError(f"Orthanc answered {response.status_code} to GET {path}")
        return response

    def alive(self) -> bool:
        try:
            self._get("/system")
        except OrthancError:
            return False
        return True

    def store(self, path: str | Path) -> dict:
        """``POST /instances``: store one DICOM file; returns Orthanc's answer (ID, ParentStudy...)."""
        try:
            response = self.http.post("/instances", content=Path(path).read_bytes(),
                                      headers={"Content-Type": "application/dicom"})
        except httpx.HTTPError as exc:
            raise OrthancError(f"Orthanc at {self.url} cannot be reached ({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise OrthancError(f"Orthanc refused {Path(path).name}: HTTP {response.status_code}")
        return response.json()

    def store_all(self, paths: Iterable[str | Path]) -> list[dict]:
        return [self.store(p) for p in paths]

    def changes(self, since: int, *, limit: int = 100) -> dict:
        return self._get("/changes", since=since, limit=limit).json()

    def study(self, orthanc_id: str) -> dict:
        return self._get(f"/studies/{orthanc_id}").json()

    def study_series(self, orthanc_id: str) -> list[dict]:
        return self._get(f"/studies/{orthanc_id}/series").json()

    def series_instances(self, orthanc_id: str) -> list[dict]:
        return self._get(f"/series/{orthanc_id}/instances").json()

    def instance_tags(self, orthanc_id: str) -> dict:
        return self._get(f"/instances/{orthanc_id}/simplified-tags").json()

    def instance_file(self, orthanc_id: str) -> bytes:
        return self._get(f"/instances/{orthanc_id}/file").content

    def find_study(self, study_uid: str) -> str | None:
        response = self.http.post("/tools/lookup", content=study_uid)
        if response.status_code >= 400:
            raise OrthancError(f"Orthanc answered {response.status_code} to a study lookup")
        for item in response.json():
            if item.get("Type") == "Study":
                return item["ID"]
        return None


class OrthancLink:
    """Polls Orthanc's changes and files every new stable study's analysable images into the store.

    Images already known (same SOP Instance UID) are not fetched again, so the results the
    service itself stores into a study (SEG, SR, SC: not CT) never trigger a new analysis.
    """

    def __init__(self, client: OrthancClient, store: Store, data_dir: Path, *, poll_s: float = 2.0):
        self.client, self.store, self.data_dir, self.poll_s = client, store, data_dir, poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.store.get_state(STATE_LAST_CHANGE) is None:
            self.store.set_state(STATE_LAST_CHANGE, "0")
        self._thread = threading.Thread(target=self._run, name="orthanc-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while self.poll_once():
                    pass
            except OrthancError as exc:
                logger.warning("Orthanc link: %s; retrying in %.0f s", exc, self.poll_s)
            except Exception:
                logger.exception("Orthanc link: unexpected error; retrying")
            self._stop.wait(self.poll_s)

    def poll_once(self) -> bool:
        """Handle one page of changes; True when more pages are waiting."""
        since = int(self.store.get_state(STATE_LAST_CHANGE, "0"))
        page = self.client.changes(since)
        for change in page.get("Changes", []):
            if change.get("ChangeType") == "StableStudy":
                self.fetch_study(change["ID"])
        self.store.set_state(STATE_LAST_CHANGE, str(page.get("Last", since)))
        return not page.get("Done", True)

    def fetch_study(self, orthanc_id: str) -> int | None:
        """File the study's new analysable images; queue it if they changed. Returns the study id."""
        study_uid = self.client.study(orthanc_id)["MainDicomTags"]["StudyInstanceUID"]
        added = 0
        for series in self.client.study_series(orthanc_id):
            tags = series.get("MainDicomTags", {})
            instances = self.client.series_instances(series["ID"])
            if not instances:
                continue
            if self.store.series_status(tags["SeriesInstanceUID"]) == "skipped":
                continue
            first = self.client.instance_tags(instances[0]["ID"])
            reason = skip_reason(tags.get("Modality"), first.get("BodyPartExamined"))
            for instance in instances:
                sop_uid = instance["MainDicomTags"]["SOPInstanceUID"]
                if self.store.knows_instance(sop_uid):
                    continue
                key = ImageKey(study_uid, tags["SeriesInstanceUID"], sop_uid, tags.get("Modality"),
                               first.get("BodyPartExamined"), reason)
                if reason is not None:  # recorded once per series, no pixels fetched
                    file_image(self.store, self.data_dir, key, lambda p: None, source="orthanc",
                               orthanc_id=orthanc_id)
                    break
                content = self.client.instance_file(instance["ID"])
                if file_image(self.store, self.data_dir, key, lambda p, c=content: p.write_bytes(c),
                              source="orthanc", orthanc_id=orthanc_id):
                    added += 1
        study_id = self.store.study_id(study_uid)
        if study_id is None:
            return None
        if added:
            series_uids = tuple(s["MainDicomTags"]["SeriesInstanceUID"] for s in self.client.study_series(orthanc_id))
            self.store.complete_series(series_uids=series_uids)  # Orthanc says the study is stable
        self.store.refresh_study(study_id)  # a study with nothing to analyse is marked skipped
        return study_id
