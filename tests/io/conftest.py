"""Fixtures of the io tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


@pytest.fixture
def assert_cli_rejects(tmp_path, capsys):
    """Run ``pneumolens analyze INPUT --out OUT``; assert exit code 2, the message, no output."""

    def check(path: Path | list[Path], match: str) -> None:
        from pneumolens.cli import main

        out = tmp_path / "cli-out"
        inputs = [str(p) for p in path] if isinstance(path, list) else [str(path)]
        code = main(["analyze", *inputs, "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "Traceback" not in err
        assert re.search(match, err), err
        assert not out.exists(), "a rejected input must leave no output folder"

    return check
