"""Settings of ``pneumolens serve``, read once from a TOML file (``docs/service.md``).

Every option has a default suited to one workstation next to a PACS: everything binds to
127.0.0.1, a token is required, the worker pool is sized to the machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomllib

from pneumolens.errors import InputError

#: Memory one analysis may need (a 512x512x600 scan peaks near 1.4 GB, docs/performance.md).
ANALYSIS_MEMORY_GB = 2.0


@dataclass(frozen=True)
class DicomSettings:
    """The DICOM C-STORE receiver (SCP)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 11112
    ae_title: str = "PNEUMOLENS"
    #: Calling AE titles allowed to send; empty: any caller.
    allowed_ae_titles: tuple[str, ...] = ()
    #: A series is complete when no image of it arrived for this long (seconds).
    quiet_s: float = 10.0
    #: A series is also complete when the association that sent it is released.
    complete_on_release: bool = False
    max_pdu: int = 0


@dataclass(frozen=True)
class OrthancSettings:
    """The PACS (Orthanc) the results go back to, and optionally the source of studies."""

    url: str | None = None
    username: str | None = None
    password: str | None = None
    #: Fetch every new stable study of Orthanc (REST ``/changes``) and analyse it.
    watch: bool = False
    poll_s: float = 2.0
    #: Store SEG, SR and SC into Orthanc in the same study.
    store_results: bool = True


@dataclass(frozen=True)
class AnalysisSettings:
    """What the workers run (``pneumolens.pipeline.analyze``) and how many at once."""

    method: str | None = None
    weights: Path | None = None
    #: Parallel analyses; 0: sized to the machine (cores / 2, limited by memory).
    workers: int = 0
    #: Threads per analysis; 0: cores / workers.
    threads: int = 0
    #: Attempts before a job that keeps failing (crash, not bad input) is given up.
    max_attempts: int = 3
    #: Seconds one analysis may take before it is stopped and counted as a failed attempt.
    timeout_s: float = 900.0
    #: Write DICOM SEG, SR and SC (needs the ``export.dicom`` writers).
    dicom: bool = True


@dataclass(frozen=True)
class AlertSettings:
    """When a study is flagged, and who is told."""

    #: Without an assessment in the analysis: alert when lesions cover at least this % of the lungs.
    lesion_percent: float = 5.0
    webhook_url: str | None = None
    webhook_attempts: int = 5
    webhook_backoff_s: float = 2.0


@dataclass(frozen=True)
class ServiceConfig:
    """Everything ``pneumolens serve`` needs; see ``docs/service.md`` for the file format."""

    data_dir: Path = Path("pneumolens-data")
    host: str = "127.0.0.1"
    port: int = 8080
    #: Token for the API and the worklist (``token`` or ``token_file`` or ``$PNEUMOLENS_TOKEN``).
    token: str = field(default="", repr=False)
    ohif_dir: Path | None = None
    dicom: DicomSettings = field(default_factory=DicomSettings)
    orthanc: OrthancSettings = field(default_factory=OrthancSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)

    def __post_init__(self) -> None:
        if len(self.token) < 16:
            raise InputError(
                "the service token is missing or shorter than 16 characters",
                todo="set token, token_file or $PNEUMOLENS_TOKEN to a long random string "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)",
            )
        if not 0 < self.port < 65536 or not 0 <= self.dicom.port < 65536:
            raise InputError(f"ports must be 1-65535, got http {self.port} and dicom {self.dicom.port}")
        if self.dicom.quiet_s <= 0:
            raise InputError(f"dicom.quiet_s must be > 0 seconds, got {self.dicom.quiet_s}")
        if self.analysis.method not in (None, "model", "density"):
            raise InputError(f"analysis.method must be 'model' or 'density', got {self.analysis.method!r}")
        if self.orthanc.watch and not self.orthanc.url:
            raise InputError("orthanc.watch is true but orthanc.url is not set")

    @property
    def workers(self) -> int:
        """Parallel analyses: as configured, else cores // 2 limited by the free memory."""
        if self.analysis.workers > 0:
            return self.analysis.workers
        cores = os.cpu_count() or 1
        by_memory = int(_available_memory_gb() // ANALYSIS_MEMORY_GB)
        return max(1, min(cores // 2, by_memory))

    @property
    def threads_per_job(self) -> int:
        if self.analysis.threads > 0:
            return self.analysis.threads
        return max(1, (os.cpu_count() or 1) // self.workers)


def _available_memory_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 4.0


_SECTIONS = {"dicom": DicomSettings, "orthanc": OrthancSettings, "analysis": AnalysisSettings, "alerts": AlertSettings}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(f"unknown setting(s) {', '.join(unknown)} in [{where}]", todo="see docs/service.md")
    out = {}
    for name, value in values.items():
        default = getattr(cls(), name) if cls is not ServiceConfig else None
        if isinstance(default, tuple) or name == "allowed_ae_titles":
            value = tuple(value)
        elif name in ("data_dir", "ohif_dir", "weights") and value is not None:
            value = Path(value)
        out[name] = value
    return out


def load_config(path: str | Path | None = None, **overrides: Any) -> ServiceConfig:
    """Read a ``serve`` TOML file (sections ``[dicom]``, ``[orthanc]``, ``[analysis]``, ``[alerts]``).

    Relative paths in the file are relative to the file. ``overrides`` replace top-level keys.
    """
    raw: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise InputError("the service configuration file does not exist", where=path) from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"the service configuration is not valid TOML ({exc})", where=path) from None
        base = path.parent
    sections = {}
    for name, cls in _SECTIONS.items():
        sections[name] = cls(**_build(cls, raw.pop(name, {}), name))
    token_file = raw.pop("token_file", None)
    top = _build(ServiceConfig, raw, "top level")
    if token_file and not top.get("token"):
        top["token"] = (base / token_file).read_text().strip()
    top.setdefault("token", os.environ.get("PNEUMOLENS_TOKEN", ""))
    for key in ("data_dir", "ohif_dir"):
        if top.get(key) is not None and not Path(top[key]).is_absolute():
            top[key] = (base / top[key]).resolve()
    if sections["analysis"].weights is not None and not sections["analysis"].weights.is_absolute():
        sections["analysis"] = replace(sections["analysis"], weights=(base / sections["analysis"].weights).resolve())
    top.update(overrides)
    return ServiceConfig(**top, **sections)
