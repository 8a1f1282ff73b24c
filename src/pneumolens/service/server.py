"""``pneumolens serve``: the receiver, the Orthanc link, the workers and the web app in one process."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from typing import Any

from pneumolens.service.config import ServiceConfig
from pneumolens.service.intake import StorageSCP
from pneumolens.service.notify import Webhook
from pneumolens.service.orthanc import OrthancClient, OrthancLink
from pneumolens.service.store import Store
from pneumolens.service.worker import WorkerPool

logger = logging.getLogger(__name__)


class Service:
    """All parts of the service over one store; ``start()``/``stop()`` in the web app's lifespan."""

    def __init__(self, config: ServiceConfig):
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(config.data_dir / "service.sqlite")
        o = config.orthanc
        self.orthanc = OrthancClient(o.url, username=o.username, password=o.password) if o.url else None
        self.workers = WorkerPool(config, self.store, self.orthanc)
        self.scp = None
        if config.dicom.enabled:
            d = config.dicom
            self.scp = StorageSCP(self.store, config.data_dir, ae_title=d.ae_title, host=d.host, port=d.port,
                                  allowed_ae_titles=d.allowed_ae_titles,
                                  on_release=self._released if d.complete_on_release else None)
        self.link = (OrthancLink(self.orthanc, self.store, config.data_dir, poll_s=o.poll_s)
                     if o.watch and self.orthanc else None)
        self.webhook = Webhook(config.alerts, self.store) if config.alerts.webhook_url else None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def _released(self, series_uids: tuple[str, ...]) -> None:
        self.store.complete_series(series_uids=series_uids)

    def _watch_series(self) -> None:
        """Series completion by quiet time (checked several times per quiet period)."""
        interval = min(1.0, self.config.dicom.quiet_s / 4)
        while not self._stop.wait(interval):
            try:
                self.store.complete_series(quiet_s=self.config.dicom.quiet_s)
            except Exception:
                logger.exception("series completion check failed")

    def start(self) -> None:
        requeued = self.store.recover()
        if requeued:
            logger.info("%d interrupted job(s) queued again", requeued)
        if self.scp is not None:
            self.scp.start()
        self._watcher = threading.Thread(target=self._watch_series, name="series-watch", daemon=True)
        self._watcher.start()
        self.workers.start()
        if self.link is not None:
            self.link.start()
        if self.webhook is not None:
            self.webhook.start()

    def stop(self) -> None:
        self._stop.set()
        if self.scp is not None:
            self.scp.stop()
        for part in (self.link, self.webhook):
            if part is not None:
                part.stop()
        self.workers.stop()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        if self.orthanc is not None:
            self.orthanc.close()
        self.store.close()

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"workers": self.config.workers}
        if self.scp is not None:
            out["dicom"] = {"ae_title": self.config.dicom.ae_title, "port": self.scp.port}
        if self.orthanc is not None:
            out["orthanc"] = self.orthanc.alive()
        if self.link is not None:
            out["orthanc_change"] = int(self.store.get_state("orthanc.last_change", "0"))
        return out

    def app(self):
        from pneumolens.service.app import create_app

        @asynccontextmanager
        async def lifespan(_app):
            self.start()
            try:
                yield
            finally:
                self.stop()

        return create_app(self.config, self.store, health=self.health, lifespan=lifespan)


def serve(config: ServiceConfig) -> None:
    """Run the service until SIGINT/SIGTERM (uvicorn handles the signals and shuts down cleanly)."""
    import uvicorn

    # Library loggers that would log request paths or DICOM details below WARNING.
    for name in ("pynetdicom", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    service = Service(config)
    server = uvicorn.Server(uvicorn.Config(service.app(), host=config.host, port=config.port,
                                           log_level="warning", access_log=False, lifespan="on"))
    logger.info("pneumolens serve on http://%s:%d", config.host, config.port)
    server.run()
