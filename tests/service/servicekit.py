"""Helpers of the service tests: free ports, real Orthanc and `pneumolens serve` processes,
DICOM sending with pynetdicom, waiting on the event stream (no sleeps as synchronisation)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789abcdef"


def require_executable(name: str, *, why: str) -> str:
    """``tests/conftest.py``'s :func:`require_executable`, loaded by path (``from conftest import``
    may pick another folder's conftest module)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pneumolens_tests_root_conftest", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.require_executable(name, why=why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1) -> object:
    """Poll ``check`` until it returns something truthy (readiness of a started process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, OSError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


@dataclass
class Orthanc:
    url: str
    dicom_port: int
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_orthanc(folder: Path, *, stable_age: int = 1) -> Orthanc:
    http_port, dicom_port = free_port(), free_port()
    with open(folder / "orthanc.log", "wb") as log:
        process = subprocess.Popen([str(REPO / "scripts" / "orthanc.sh"), str(folder), "--http-port", str(http_port),
                                    "--dicom-port", str(dicom_port), "--stable-age", str(stable_age)],
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_until(lambda: httpx.get(url + "/system").status_code == 200, timeout=60, what="Orthanc")
    except TimeoutError:
        process.kill()
        raise
    return Orthanc(url, dicom_port, process)


@dataclass
class Server:
    url: str
    dicom_port: int
    config: Path
    process: subprocess.Popen
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, timeout=30, **kwargs)

    def kill(self) -> None:
        """SIGKILL the service and its analysis children (a crash, a power cut)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def analysis_pids(self) -> list[int]:
        """Process ids of the analysis children of this service (``/proc``, by parent id)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid and b"pneumolens.service.job" in cmdline:
                pids.append(int(stat.parent.name))
        return pids


def write_config(folder: Path, *, orthanc: Orthanc | None = None, port: int | None = None,
                 dicom_port: int | None = None, extra: str = "", dicom_extra: str = "",
                 analysis_extra: str = "", orthanc_extra: str = "", alerts_extra: str = "", workers: int = 1,
                 method: str = "density", lesion_percent: float = 1.0) -> Path:
    port = port or free_port()
    dicom_port = dicom_port or free_port()
    if "quiet_s" not in dicom_extra:
        dicom_extra += "\nquiet_s = 1.0"
    text = f"""
data_dir = "data"
port = {port}
token = "{TOKEN}"
{extra}

[dicom]
port = {dicom_port}
ae_title = "PNEUMOLENS"
{dicom_extra}

[analysis]
method = "{method}"
workers = {workers}
{analysis_extra}

[alerts]
lesion_percent = {lesion_percent}
{alerts_extra}
"""
    if orthanc is not None:
        text += f'\n[orthanc]\nurl = "{orthanc.url}"\n{orthanc_extra}\n'
    path = folder / "serve.toml"
    path.write_text(text)
    return path


def start_server(config: Path) -> Server:
    import tomllib

    settings = tomllib.loads(config.read_text())
    log = config.parent / f"serve-{time.time_ns()}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "pneumolens", "-v", "serve", "--config", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                   cwd=config.parent)
    server = Server(f"http://127.0.0.1:{settings['port']}", settings["dicom"]["port"], config, process, log)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"pneumolens serve exited with {process.returncode}: {log.read_text()[-2000:]}")
        return httpx.get(server.url + "/health").status_code == 200

    wait_until(ready, timeout=60, what="pneumolens serve")
    return server


def send_files(files: Sequence[Path], port: int, *, calling: str = "MODALITY", called: str = "PNEUMOLENS",
               datasets: Sequence = ()) -> list[int]:
    """C-STORE ``files`` (and ``datasets``) in one association; the status of each, or raise if refused."""
    from pydicom import dcmread
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom import AE

    items = [dcmread(item) if isinstance(item, (str, Path)) else item for item in [*files, *datasets]]
    ae = AE(ae_title=calling)
    for sop_class in sorted({str(ds.SOPClassUID) for ds in items}):
        syntaxes = {str(ds.file_meta.TransferSyntaxUID) for ds in items if str(ds.SOPClassUID) == sop_class}
        for syntax in sorted(syntaxes | {ExplicitVRLittleEndian, ImplicitVRLittleEndian}):
            ae.add_requested_context(sop_class, syntax)  # one context each: the files' own are accepted
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        raise ConnectionRefusedError(f"association refused (rejected: {assoc.is_rejected})")
    statuses = []
    try:
        for ds in items:
            status = assoc.send_c_store(ds)
            statuses.append(int(status.Status) if status else -1)
    finally:
        assoc.release()
    return statuses


def storescu(folder: Path, port: int, *, calling: str = "MODALITY", called: str = "PNEUMOLENS",
             options: Sequence[str] = ()) -> None:
    """Send every file under ``folder`` with dcmtk's storescu, as a modality would.

    ``TCP_NODELAY=1``: Debian's dcmtk leaves Nagle's algorithm on by default, which costs ~40 ms
    (a delayed ACK) per image; modalities send without it.
    """
    process = storescu_start(folder, port, calling=calling, called=called, options=options)
    _, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise ConnectionRefusedError(f"storescu failed ({process.returncode}): {err.decode()[-500:]}")


def storescu_start(folder: Path, port: int, *, calling: str = "MODALITY", called: str = "PNEUMOLENS",
                   options: Sequence[str] = ()):
    """Start storescu on ``folder`` (see :func:`storescu`); returns the process."""
    program = require_executable("storescu", why="dcmtk sends the images as a modality would")
    return subprocess.Popen([program, "-aet", calling, "-aec", called, "+sd", "+r", *options, "127.0.0.1",
                             str(port), str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TCP_NODELAY": "1"})


def events(server: Server, *, after: int = 0, timeout: float = 300) -> Iterator[tuple[str, dict]]:
    """Yield ``(type, data)`` from the server's event stream after event ``after``
    (``data["event_id"]``: the event's number)."""
    with httpx.stream("GET", f"{server.url}/api/events", params={"after": after}, headers=server.headers,
                      timeout=httpx.Timeout(timeout, connect=10)) as response:
        response.raise_for_status()
        kind, event_id = None, None
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind:
                yield kind, {**json.loads(line[6:]), "event_id": event_id}
                kind = None


def wait_for_event(server: Server, predicate: Callable[[str, dict], bool], *, after: int = 0,
                   timeout: float = 300) -> tuple[str, dict]:
    for kind, data in events(server, after=after, timeout=timeout):
        if predicate(kind, data):
            return kind, data
    raise AssertionError("the event stream ended")


def write_phantom_series(folder: Path, *, seed: int = 0, shape=(40, 96, 96), study_uid: str | None = None,
                         **kwargs) -> list[Path]:
    """A small synthetic chest CT with pneumonia-like lesions, as a DICOM series."""
    from pneumolens.io.dicom_write import write_ct_series
    from pneumolens.synthetic import make_chest_phantom

    phantom = make_chest_phantom(shape, (5.0, 3.5, 3.5), seed=seed)
    return write_ct_series(phantom.volume, phantom.spacing, folder, study_uid=study_uid, **kwargs)
