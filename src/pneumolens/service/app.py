"""The web side of the service (FastAPI): API, alert event stream, worklist page, OHIF.

Every route but ``GET /health`` needs the token: ``Authorization: Bearer TOKEN`` for programs,
or the session cookie that ``POST /login`` sets for a browser (the worklist, the OHIF viewer and
its ``/dicom-web`` proxy are same-origin, so the cookie covers them; Orthanc itself stays on
loopback and needs no CORS).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.background import BackgroundTask

from pneumolens.service.config import ServiceConfig
from pneumolens.service.store import Store

logger = logging.getLogger(__name__)

COOKIE = "pneumolens_session"
#: Seconds between keep-alive comments on an idle event stream.
KEEPALIVE_S = 15.0
_PUBLIC = ("/health", "/login")
#: Response headers of Orthanc that are passed through the /dicom-web proxy.
_PASS_HEADERS = ("content-type", "content-length", "content-encoding", "content-disposition", "etag",
                 "last-modified")


def _session_value(token: str) -> str:
    return hmac.new(token.encode(), b"pneumolens-session", hashlib.sha256).hexdigest()


def _static(name: str) -> str:
    return resources.files("pneumolens.service").joinpath("static", name).read_text()


class _Broadcaster:
    """Wakes the open event streams when the store adds events (called from any thread)."""

    def __init__(self) -> None:
        self.waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def __call__(self) -> None:
        for loop, event in list(self.waiters):
            loop.call_soon_threadsafe(event.set)


def create_app(config: ServiceConfig, store: Store, *, health: Any = None, lifespan: Any = None) -> FastAPI:
    """The FastAPI application; ``health()`` adds component states to ``GET /health``."""
    app = FastAPI(title="pneumolens", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    session = _session_value(config.token)
    broadcaster = _Broadcaster()
    store.add_listener(broadcaster)
    orthanc = (httpx.AsyncClient(base_url=config.orthanc.url.rstrip("/"), timeout=120,
                                 auth=(config.orthanc.username, config.orthanc.password)
                                 if config.orthanc.username else None)
               if config.orthanc.url else None)

    def _viewer_file(path: str) -> bool:
        """The viewer's own code and icons (no patient data) load without the cookie: browsers
        fetch manifest.json and icons without credentials."""
        if config.ohif_dir is None or path in ("/", "/app-config.js") or ".." in path:
            return False
        return (config.ohif_dir / path.lstrip("/")).is_file()

    def authorised(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return hmac.compare_digest(header[7:].strip().encode(), config.token.encode())
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), session.encode())

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        path = request.url.path
        if path in _PUBLIC or authorised(request) or _viewer_file(path):
            return await call_next(request)
        if path.startswith(("/api/", "/dicom-web", "/wado")) or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": "missing or wrong token: send 'Authorization: Bearer TOKEN' "
                                 "or log in at /login"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.get("/health")
    def get_health() -> dict[str, Any]:
        out = {"status": "ok", "jobs": store.counts()}
        if health is not None:
            out.update(health())
        return out

    @app.get("/login", response_class=HTMLResponse)
    def login_page(error: str = "") -> str:
        return _static("login.html").replace("{{error}}", "wrong token" if error else "")

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))  # a urlencoded form
        token = form.get("token", [""])[0]
        next = form.get("next", ["/worklist"])[0]
        if not hmac.compare_digest(token.encode(), config.token.encode()):
            logger.warning("failed log-in attempt")
            return RedirectResponse("/login?error=1", status_code=303)
        target = next if next.startswith("/") and not next.startswith("//") else "/worklist"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, session, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/worklist", status_code=303)

    @app.get("/worklist", response_class=HTMLResponse)
    def worklist() -> str:
        return _static("worklist.html")

    @app.get("/api/studies")
    def list_studies() -> dict[str, Any]:
        return {"last_event_id": store.last_event_id(), "studies": store.studies()}

    def _study_or_404(study_id: int) -> dict[str, Any]:
        study = store.study(study_id)
        if study is None:
            raise HTTPException(404, f"no study {study_id}")
        return study

    def _result_file(study_id: int, name: str) -> Path:
        _study_or_404(study_id)
        out = store.job_out_dir(study_id)
        if out is None or not (out / name).is_file():
            raise HTTPException(404, f"study {study_id} has no {name} yet")
        return out / name

    @app.get("/api/studies/{study_id}")
    def get_study(study_id: int) -> dict[str, Any]:
        study = _study_or_404(study_id)
        out = store.job_out_dir(study_id)
        study["analysis"] = json.loads((out / "analysis.json").read_text()) if out else None
        return study

    @app.get("/api/studies/{study_id}/report", response_class=HTMLResponse)
    def get_report(study_id: int) -> FileResponse:
        return FileResponse(_result_file(study_id, "report.html"), media_type="text/html")

    @app.get("/api/studies/{study_id}/key-image.png")
    def get_key_image(study_id: int) -> FileResponse:
        return FileResponse(_result_file(study_id, "key_image.png"), media_type="image/png")

    @app.get("/api/events")
    async def events(request: Request, after: int | None = None) -> StreamingResponse:
        """Server-sent events (``study`` status changes, ``alert``), resumable by ``Last-Event-ID``."""
        header = request.headers.get("last-event-id")
        start = int(header) if header and header.isdigit() else (after if after is not None else store.last_event_id())

        async def stream():
            last = start
            wake = asyncio.Event()
            waiter = (asyncio.get_running_loop(), wake)
            broadcaster.waiters.add(waiter)
            try:
                yield "retry: 2000\n\n"
                while not await request.is_disconnected():
                    wake.clear()
                    batch = await asyncio.to_thread(store.events_after, last)
                    for event in batch:
                        last = event["id"]
                        payload = json.dumps({**event["data"], "time": event["time"]})
                        yield f"id: {last}\nevent: {event['type']}\ndata: {payload}\n\n"
                    if batch:
                        continue
                    try:
                        await asyncio.wait_for(wake.wait(), timeout=KEEPALIVE_S)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                broadcaster.waiters.discard(waiter)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def proxy(request: Request, path: str) -> Response:
        if orthanc is None:
            raise HTTPException(503, "no Orthanc configured ([orthanc] url)")
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("accept", "range")}
        upstream = orthanc.build_request("GET", path, params=request.query_params, headers=headers)
        try:
            response = await orthanc.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            raise HTTPException(502, f"Orthanc cannot be reached ({type(exc).__name__})") from None
        passed = {k: v for k, v in response.headers.items() if k.lower() in _PASS_HEADERS}
        return StreamingResponse(response.aiter_raw(), status_code=response.status_code, headers=passed,
                                 background=BackgroundTask(response.aclose))

    @app.get("/dicom-web/{path:path}")
    async def dicom_web(request: Request, path: str) -> Response:
        return await proxy(request, f"/dicom-web/{path}")

    @app.get("/wado")
    async def wado(request: Request) -> Response:
        return await proxy(request, "/wado")

    ohif_dir = config.ohif_dir

    @app.get("/app-config.js")
    def ohif_config() -> Response:
        return Response(_static("ohif-app-config.js"), media_type="application/javascript")

    @app.get("/{path:path}", include_in_schema=False)
    def ohif(path: str) -> Response:
        """The prebuilt OHIF viewer (``scripts/setup_ohif.sh``), with its single-page routes."""
        if ohif_dir is None or not (ohif_dir / "index.html").is_file():
            raise HTTPException(404, "the OHIF viewer is not installed: run scripts/setup_ohif.sh and set ohif_dir")
        target = (ohif_dir / path).resolve()
        if path and target.is_file() and target.is_relative_to(ohif_dir.resolve()):
            return FileResponse(target)
        if "." in path.rsplit("/", 1)[-1]:
            raise HTTPException(404, f"no file {path}")
        return FileResponse(ohif_dir / "index.html", media_type="text/html")

    return app
