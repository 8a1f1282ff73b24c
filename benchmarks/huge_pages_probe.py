"""Seconds to touch 1 GB of fresh numpy arrays, with and without numpy's huge-page request.

numpy marks arrays of 4 MB or more ``madvise(MADV_HUGEPAGE)``; where the kernel's THP ``defrag``
setting is ``madvise`` each first touch may compact memory synchronously. Each measurement runs in
a fresh process (16 arrays of 64 MB, filled with ones), alternating the two settings
(docs/performance.md, "numpy's huge pages were the slow memory").

Usage::

    python benchmarks/huge_pages_probe.py [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

_CHILD = """
import resource, sys, time
import numpy as np
t = time.perf_counter(); r0 = resource.getrusage(resource.RUSAGE_SELF)
arrays = [np.ones(64 * 2**20 // 4, np.float32) for _ in range(16)]
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - t, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt)
"""


def touch_1gb(huge_pages: bool) -> tuple[float, float, int]:
    """Wall seconds, system seconds and minor page faults of one fresh process touching 1 GB."""
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": "1" if huge_pages else "0"}
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, env=env).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    thp = Path("/sys/kernel/mm/transparent_hugepage")
    for name in ("enabled", "defrag"):
        if (thp / name).exists():
            print(f"THP {name}: {(thp / name).read_text().strip()}")
    for _ in range(args.pairs):
        for huge in (True, False):
            wall, system, faults = touch_1gb(huge)
            print(f"huge pages {'on ' if huge else 'off'}: {wall:.2f} s (system {system:.2f} s, {faults} faults)")


if __name__ == "__main__":
    main()
