"""The one analysis path: ``analyze(scan, config) -> Analysis``.

The CLI, the service, batch runs and the evaluation harness all call :func:`analyze`
(or :func:`analyze_path`, which reads first); nothing re-implements a stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pneumolens.analysis import Analysis
from pneumolens.anatomy import segment_lungs
from pneumolens.config import Config
from pneumolens.findings import quantify
from pneumolens.io import CTScan
from pneumolens.lesions import segment_lesions

logger = logging.getLogger(__name__)

#: Stages in order, as reported to a progress callback and in ``timings_s``.
STAGES = ("read", "lungs", "lesions", "findings")

#: ``progress(stage, index, total)`` is called when a stage starts.
ProgressCallback = Callable[[str, int, int], None]


class _Timer:
    def __init__(self, progress: ProgressCallback | None, timings: dict[str, float]):
        self.progress = progress
        self.timings = timings

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress is not None:
            self.progress(name, STAGES.index(name), len(STAGES))
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 3)
        logger.info("stage %s took %.2f s", name, self.timings[name])


def analyze(
    scan: CTScan,
    config: Config | None = None,
    *,
    progress: ProgressCallback | None = None,
    timings: dict[str, float] | None = None,
) -> Analysis:
    """Segment lungs and lesions in ``scan`` and quantify them.

    Raises
    ------
    pneumolens.errors.InputError
        When the scan cannot be analysed (e.g. no lungs found).
    """
    config = Config() if config is None else config
    timings = {} if timings is None else timings
    timer = _Timer(progress, timings)
    with timer.stage("lungs"):
        lungs = segment_lungs(scan.volume, scan.spacing)
    with timer.stage("lesions"):
        # Only the model has a thread pool (onnxruntime); the density method is numpy/scipy.
        options = {"threads": config.threads} if config.method == "model" else {}
        lesions = segment_lesions(
            scan.volume, scan.spacing, lungs, method=config.method, weights=config.lesion_weights, **options
        )
        warnings = list(scan.info.warnings)
        if lesions.lung_additions is not None and lesions.lung_additions.any():
            lungs = lungs.with_added(lesions.lung_additions)
            added_ml = float(lesions.lung_additions.sum()) * scan.voxel_volume_ml
            warnings.append(
                f"{added_ml:.1f} mL of dense lesion outside the lung mask (consolidation against the "
                "chest wall) was added to the lungs; check the lung outline on the key images"
            )
    with timer.stage("findings"):
        findings = quantify(
            scan.volume,
            lungs,
            lesions,
            spacing=scan.spacing,
            z_positions_mm=scan.info.z_positions_mm or _z_from_affine(scan),
            source_files=scan.info.source_files,
        )
    return Analysis(
        scan=scan,
        config=config,
        lungs=lungs,
        lesions=lesions,
        findings=findings,
        warnings=tuple(warnings),
        timings_s=timings,
    )


def analyze_path(
    path: str | Path,
    config: Config | None = None,
    *,
    progress: ProgressCallback | None = None,
    series: str | None = None,
    patient: str | None = None,
) -> Analysis:
    """Read ``path`` (any input :func:`pneumolens.io.load_scan` accepts) and analyse it.

    ``series`` / ``patient`` pick one series (SeriesInstanceUID) or patient (PatientID) of an
    input that holds several patients or studies (refused otherwise).
    """
    from pneumolens.io import load_scan

    timings: dict[str, float] = {}
    timer = _Timer(progress, timings)
    with timer.stage("read"):
        scan = load_scan(path, series=series, patient=patient)
    return analyze(scan, config, progress=progress, timings=timings)


def _z_from_affine(scan: CTScan) -> tuple[float, ...]:
    """Patient z (mm) of each slice centre, for inputs without per-slice positions."""
    k = range(scan.shape[0])
    return tuple(float(scan.affine[2, 0] * i + scan.affine[2, 3]) for i in k)
