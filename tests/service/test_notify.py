"""Alert webhook: retried with backoff until the endpoint accepts; given up with the error kept."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pneumolens.service.config import AlertSettings
from pneumolens.service.notify import Webhook
from pneumolens.service.store import PRIORITY_ALERT, Store


class _Endpoint(BaseHTTPRequestHandler):
    """Answers 503 to the first ``fail`` requests, then 204; records every body."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            server.bodies.append(body)
            ok = len(server.bodies) > server.fail
        self.send_response(204 if ok else 503)
        self.end_headers()
        if ok:
            server.delivered.set()

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = HTTPServer(("127.0.0.1", 0), _Endpoint)
    server.bodies, server.fail, server.lock, server.delivered = [], 2, threading.Lock(), threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _alert(store: Store) -> None:
    store.add_instance(study_uid="1.2", series_uid="1.2.1", sop_uid="3", path="/x", modality="CT", body_part=None,
                       source="dicom")
    store.complete_series(series_uids=("1.2.1",))
    job = store.job_analysed(store.claim_job(max_attempts=3), "/out")
    store.job_done(job, summary={"lesion_percent": 20.0}, alert=True, priority=PRIORITY_ALERT)


def test_an_alert_is_delivered_after_failed_attempts(tmp_path, endpoint):
    store = Store(tmp_path / "s.sqlite")
    settings = AlertSettings(webhook_url=f"http://127.0.0.1:{endpoint.server_port}/hook", webhook_attempts=5,
                             webhook_backoff_s=0.05)
    hook = Webhook(settings, store)
    hook.start()
    try:
        _alert(store)
        assert endpoint.delivered.wait(timeout=30)
    finally:
        hook.stop()
    assert len(endpoint.bodies) == 3 and endpoint.bodies[-1]["event"] == "alert"
    assert endpoint.bodies[-1]["lesion_percent"] == 20.0 and endpoint.bodies[-1]["id"] == 1
    (delivery,) = store.deliveries()
    assert delivery["attempts"] == 3 and delivery["delivered"] is not None


def test_a_failing_endpoint_is_given_up_with_its_error(tmp_path, endpoint):
    endpoint.fail = 100
    store = Store(tmp_path / "s.sqlite")
    settings = AlertSettings(webhook_url=f"http://127.0.0.1:{endpoint.server_port}/hook", webhook_attempts=2,
                             webhook_backoff_s=0.01)
    _alert(store)
    hook = Webhook(settings, store)
    for _ in range(2):  # drive the deliveries directly: two attempts, no waiting on the thread
        import httpx

        with httpx.Client() as http:
            for delivery in store.due_deliveries() or [None]:
                if delivery is None:
                    break
                hook._deliver(http, delivery)
        store._db.execute("UPDATE deliveries SET next_try = 0 WHERE next_try > 0")  # skip the backoff wait
    (delivery,) = store.deliveries()
    assert delivery["attempts"] == 2 and delivery["delivered"] is None and delivery["last_error"] == "HTTP 503"
    assert store.due_deliveries() == []
