"""Peak memory of the AUC bootstrap on a large study (issue 10: 13.1 GB for 200 replicates of
1 M rows before the resampling was streamed).

    /usr/bin/time -v python benchmarks/bootstrap_memory.py 1000000 200
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from pneumolens.validate.bootstrap import bootstrap_ci
from pneumolens.validate.roc import roc_curve


def main(n_rows: int, n_boot: int) -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(n_rows) < 0.3
    score = rng.normal(size=n_rows) + truth
    roc = roc_curve(truth, score)
    start = time.perf_counter()
    low, high = bootstrap_ci(roc, n_boot=n_boot, seed=1)
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"{n_rows} rows, {n_boot} replicates: CI {low:.6f}-{high:.6f}, {seconds:.1f} s, peak RSS {peak_gb:.2f} GB")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
