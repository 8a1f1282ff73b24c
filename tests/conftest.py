"""Shared test fixtures: the real-data folder (optional) and small phantoms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``../shared/data`` beside the checkout, or ``$PNEUMOLENS_SHARED_DATA``."""
    env = os.environ.get("PNEUMOLENS_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the real chest CT data; skips the test when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not present at {path} (set PNEUMOLENS_SHARED_DATA)")
    return path


def system_executable(name: str) -> str | None:
    """``shutil.which(name)`` on ``$PATH`` without the running Python environment's scripts folder."""
    import shutil
    import sys

    own = {Path(sys.prefix, "bin").resolve(), Path(sys.executable).parent.resolve()}
    folders = [f for f in os.environ.get("PATH", os.defpath).split(os.pathsep) if f and Path(f).resolve() not in own]
    return shutil.which(name, path=os.pathsep.join(folders))


def require_executable(name: str, *, why: str) -> str:
    """Path of the system program ``name``; skips the test when it is absent.

    CI sets ``PNEUMOLENS_REQUIRE_SERVICES=1`` (its ``.ci/run`` installs Orthanc, Chromium,
    dicom3tools): there a missing program fails the test instead of skipping it, so a broken
    install cannot pass as a skip. The Python environment's own scripts folder is not searched:
    pynetdicom 3 installs Python look-alikes of dcmtk's ``storescu``/``findscu`` there, with other
    options, and an activated venv would put them first.
    """
    path = system_executable(name)
    if path is None:
        message = f"{name} not installed ({why}); .ci/run installs it from .ci/apt.d/"
        if os.environ.get("PNEUMOLENS_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
