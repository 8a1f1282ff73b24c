"""Fuzz test of the reader (issue 10): mutated real slices give a scan or an InputError, never
another exception and never a hang. See ``fuzz_reader.py``; the budget is
``$PNEUMOLENS_FUZZ_SECONDS`` (default 60 s), the seed fixed, so CI repeats the same inputs
as far as the machine's speed allows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_mutated_real_slices_never_crash_or_hang_the_reader():
    seconds = float(os.environ.get("PNEUMOLENS_FUZZ_SECONDS", "60"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]))
    try:
        done = subprocess.run(
            [sys.executable, "-W", "ignore", str(HERE / "fuzz_reader.py"), "--seconds", str(seconds), "--seed", "10"],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 120,  # one input that does not return within 2 minutes is a hang
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the reader hung on a fuzzed input (no result after {exc.timeout:.0f} s)")
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-2000:]
    summary = json.loads(lines[-1])
    print("fuzz:", summary)
    crashes = [json.loads(line) for line in lines[:-1] if "error" in json.loads(line)]
    assert summary["tried"] >= 50, summary
    assert summary["crashes"] == 0, crashes[:5]
    assert done.returncode == 0, done.stderr[-2000:]
