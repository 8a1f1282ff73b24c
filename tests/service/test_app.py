"""The web API: token required everywhere but /health, cookie log-in, studies, events."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from servicekit import TOKEN

from pneumolens.service.app import create_app
from pneumolens.service.config import ServiceConfig
from pneumolens.service.store import PRIORITY_ALERT, Store

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path):
    store = Store(tmp_path / "service.sqlite")
    config = ServiceConfig(data_dir=tmp_path, token=TOKEN)
    with TestClient(create_app(config, store)) as c:
        c.store = store
        yield c
    store.close()


def _done_study(store: Store, out) -> int:
    store.add_instance(study_uid="1.2.3", series_uid="1.2.3.4", sop_uid="5", path="/x", modality="CT",
                       body_part=None, source="dicom")
    store.complete_series(series_uids=("1.2.3.4",))
    out.mkdir()
    (out / "analysis.json").write_text(json.dumps({"lesions": {"percent_of_lungs": 12.5}}))
    (out / "report.html").write_text("<html>report</html>")
    job = store.job_analysed(store.claim_job(max_attempts=3), out)
    store.job_done(job, summary={"lesion_percent": 12.5}, alert=True, priority=PRIORITY_ALERT)
    return job.study_id


@pytest.mark.parametrize("path", ["/api/studies", "/api/studies/1", "/api/studies/1/report", "/api/events",
                                  "/dicom-web/studies", "/worklist", "/viewer"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"},
                                     {"Cookie": "pneumolens_session=forged"}])
def test_everything_but_health_needs_the_token(client, path, headers):
    response = client.get(path, headers={**headers, "Accept": "application/json"}, follow_redirects=False)
    assert response.status_code == 401
    assert "token" in response.json()["detail"]


def test_a_browser_without_the_token_is_sent_to_the_log_in_page(client):
    response = client.get("/worklist", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_health_is_open_and_counts_jobs(client):
    assert client.get("/health").json() == {"status": "ok", "jobs": {}}


def test_log_in_sets_a_cookie_that_opens_the_worklist(client):
    wrong = client.post("/login", data={"token": "nope"}, follow_redirects=False)
    assert wrong.headers["location"] == "/login?error=1" and "pneumolens_session" not in wrong.cookies
    right = client.post("/login", data={"token": TOKEN, "next": "/worklist"}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/worklist"
    assert client.get("/worklist").status_code == 200  # the cookie is kept by the client
    assert client.get("/api/studies").status_code == 200


def test_studies_analysis_and_report(client, tmp_path):
    study_id = _done_study(client.store, tmp_path / "out")
    studies = client.get("/api/studies", headers=AUTH).json()
    assert [s["id"] for s in studies["studies"]] == [study_id] and studies["studies"][0]["alert"] is True
    study = client.get(f"/api/studies/{study_id}", headers=AUTH).json()
    assert study["analysis"]["lesions"]["percent_of_lungs"] == 12.5 and study["jobs"][0]["status"] == "done"
    assert client.get(f"/api/studies/{study_id}/report", headers=AUTH).text == "<html>report</html>"
    assert client.get(f"/api/studies/{study_id}/key-image.png", headers=AUTH).status_code == 404
    assert client.get("/api/studies/99", headers=AUTH).status_code == 404


def test_the_event_stream_replays_from_an_event_id(client, tmp_path):
    study_id = _done_study(client.store, tmp_path / "out")
    alert_id = next(e["id"] for e in client.store.events_after(0) if e["type"] == "alert")
    with client.stream("GET", "/api/events", params={"after": alert_id - 1}, headers=AUTH) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")
        next(lines)
        assert next(lines) == f"id: {alert_id}"
        assert next(lines) == "event: alert"
        data = json.loads(next(lines)[len("data: "):])
    assert data["id"] == study_id and data["lesion_percent"] == 12.5


def test_the_viewer_is_not_served_before_it_is_installed(client):
    assert "setup_ohif" in client.get("/viewer", headers=AUTH).json()["detail"]
