"""Alert webhook: each alert is POSTed as JSON to ``[alerts] webhook_url``, retried with backoff.

Deliveries are rows of the store (one per alert event), so an alert raised before a restart is
still delivered after it; an endpoint that keeps failing is given up after ``webhook_attempts``
with the last error kept (``GET /health`` counts them).
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from pneumolens.service.config import AlertSettings
from pneumolens.service.store import Store

logger = logging.getLogger(__name__)


class Webhook:
    def __init__(self, settings: AlertSettings, store: Store):
        self.settings, self.store = settings, store
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        store.add_listener(self._wake.set)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                self._wake.clear()
                for delivery in self.store.due_deliveries():
                    self._deliver(http, delivery)
                self._wake.wait(timeout=1.0)

    def _deliver(self, http: httpx.Client, delivery: dict) -> None:
        body = {"event": delivery["type"], "event_id": delivery["event_id"], **delivery["data"]}
        try:
            response = http.post(self.settings.webhook_url, json=body)
            error = None if response.status_code < 300 else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        attempts = delivery["attempts"] + 1
        if error is None:
            self.store.delivery_result(delivery["event_id"], ok=True, error=None, next_try=None)
            return
        next_try = None
        if attempts < self.settings.webhook_attempts:
            next_try = time.time() + self.settings.webhook_backoff_s * 2 ** (attempts - 1)
        logger.warning("webhook delivery of event %d failed (%s), attempt %d of %d", delivery["event_id"], error,
                       attempts, self.settings.webhook_attempts)
        self.store.delivery_result(delivery["event_id"], ok=False, error=error, next_try=next_try)
