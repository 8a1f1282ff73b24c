"""The one analysis path: ``analyze(scan, config) -> Analysis``.

The CLI, the service, batch runs and the evaluation harness all call :func:`analyze`
(or :func:`analyze_path`, which reads first); nothing re-implements a stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import Any

from pneumolens import quality
from pneumolens.analysis import Analysis, Regions
from pneumolens.anatomy import complete_lungs, segment_lungs
from pneumolens.config import Config
from pneumolens.findings import quantify
from pneumolens.io import CTScan
from pneumolens.lesions import predict_lesions
from pneumolens.masks import LungMasks
from pneumolens.scores import compute_scores

logger = logging.getLogger(__name__)

#: Stages in order, as reported to a progress callback and in ``timings_s``.
STAGES = ("read", "checks", "lungs", "lesions", "lung_completion", "regions", "findings", "assessment")

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
    lungs: LungMasks | None = None,
    progress: ProgressCallback | None = None,
    timings: dict[str, float] | None = None,
) -> Analysis:
    """Check ``scan``, segment lungs and lesions, complete the lungs, and quantify.

    The stages, in order (:data:`STAGES`):

    1. ``checks``: :func:`pneumolens.quality.check_scan` (however the scan was made);
    2. ``lungs``: :func:`pneumolens.anatomy.segment_lungs`;
    3. ``lesions``: :func:`pneumolens.lesions.predict_lesions` (the configured method);
    4. ``lung_completion``: :func:`pneumolens.anatomy.complete_lungs` adds dense lesion the lung
       mask lost; the lesions are then taken inside these final lungs, which every later stage
       (lobes, findings) sees;
    5. ``regions``: the lobes (:func:`pneumolens.anatomy.lobes.predict_lobes`, or the
       ``config.lobes_file`` map), zones or none, as ``config.regions`` asks (:func:`divide_lungs`);
    6. ``findings``: :func:`pneumolens.findings.quantify` per lung and region, and the scores
       (:func:`pneumolens.scores.compute_scores`: CT severity 0-25, PO/PHO).
    7. ``assessment``: :func:`pneumolens.assessment.assess_scan` (features, category,
       probabilities, triage) into ``Analysis.assessment``.

    Parameters
    ----------
    scan
        The CT on its canonical grid.
    config
        Settings (default :class:`Config`).
    lungs
        Lung masks to use instead of step 2 (evaluation against reference lung masks); lung
        completion still runs on them.
    progress
        Called with ``(stage, index, total)`` as each stage starts.
    timings
        Filled with seconds per stage (also in ``Analysis.timings_s``).

    Raises
    ------
    pneumolens.errors.InputError
        When the scan cannot be analysed (bad geometry, not HU, no lungs found, ...).
    """
    config = Config() if config is None else config
    timings = {} if timings is None else timings
    timer = _Timer(progress, timings)
    with timer.stage("checks"):
        warnings = list(dict.fromkeys([*scan.info.warnings, *quality.check_scan(scan)]))
    with timer.stage("lungs"):
        found = segment_lungs(scan.volume, scan.spacing) if lungs is None else lungs
    with timer.stage("lesions"):
        # Only the model has a thread pool (onnxruntime); the density method is numpy/scipy.
        options = {"threads": config.threads, "flip_tta": config.lesion_tta} if config.method == "model" else {}
        evidence = predict_lesions(
            scan.volume, scan.spacing, found, method=config.method, weights=config.lesion_weights, **options
        )
    with timer.stage("lung_completion"):
        final = complete_lungs(found, scan.volume, scan.spacing, dense_lesion=evidence.outside(found))
        added_ml = 0.0 if final is found else float(final.union.sum() - found.union.sum()) * scan.voxel_volume_ml
        if final is not found:
            warnings.append(
                f"{added_ml:.1f} mL of dense lesion outside the lung mask (consolidation against the "
                "chest wall) was added to the lungs; check the lung outline on the key images"
            )
        lesions = evidence.within(final, scan.spacing, consume=True)  # its arrays become the lesions'
        additions = None if final is found else final.union & ~found.union
        # Volume-sized arrays no later stage needs: freed now, their memory is reused by the
        # next stages instead of fresh pages (pneumolens.runtime.keep_freed_memory).
        del evidence, found
    with timer.stage("regions"):
        regions, region_warnings = divide_lungs(scan, final, config)
        warnings.extend(region_warnings)
    with timer.stage("findings"):
        findings = quantify(
            scan.volume,
            final,
            lesions,
            spacing=scan.spacing,
            z_positions_mm=scan.info.z_positions_mm or _z_from_affine(scan),
            source_files=scan.info.source_files,
            regions=regions,
        )
        scores = compute_scores(scan.volume, final.labels, lesions.labels, regions)
    analysis = Analysis(
        scan=scan,
        config=config,
        lungs=final,
        lesions=lesions,
        findings=findings,
        warnings=tuple(warnings),
        timings_s=timings,
        lung_added_ml=added_ml,
        regions=regions,
        scores=scores,
    )
    with timer.stage("assessment"):
        from pneumolens.assessment import TriageThresholds, assess_scan

        assessment = assess_scan(
            scan.volume,
            scan.spacing,
            final,
            lesions,
            lung_additions=additions,
            regions=analysis.regions,
            thresholds=TriageThresholds.from_mapping(config.triage),
            classifier=config.classifier,
        )
    return replace(analysis, assessment=assessment)


def divide_lungs(scan: CTScan, lungs: LungMasks, config: Config) -> tuple[Regions | None, list[str]]:
    """Lobes (lobe model or ``config.lobes_file``), zones or nothing, as ``config.regions`` asks.

    The lobe model needs both lungs; with one lung missing the lungs are divided into zones
    instead, with a warning.

    Raises
    ------
    pneumolens.errors.InputError
        When ``config.lobes_file`` cannot be read or does not match the scan.
    """
    from pneumolens.anatomy.lobes import external_lobes, lung_zones, predict_lobes

    if config.regions == "none":
        return None, []
    if config.regions == "zones":
        return lung_zones(lungs.labels), []
    if config.lobes_file is not None:
        regions, warnings = external_lobes(config.lobes_file, lungs.labels, scan.affine,
                                           convention=config.lobes_convention)
        return regions, list(warnings)
    if not (lungs.right.any() and lungs.left.any()):
        return lung_zones(lungs.labels), [
            (
                "only one lung was found, so lobes could not be placed; the lungs were divided into zones "
                "(thirds by volume) instead and the CT severity score (0-25) is not given"
            )
        ]
    regions, warnings = predict_lobes(lungs.labels, scan.spacing, threads=config.threads)
    return regions, list(warnings)


def analyze_path(
    path: Any,
    config: Config | None = None,
    *,
    progress: ProgressCallback | None = None,
    series: str | None = None,
    patient: str | None = None,
) -> Analysis:
    """Read ``path`` (any input :func:`pneumolens.io.open_scan` accepts) and analyse it.

    ``series`` / ``patient`` pick one series (SeriesInstanceUID) or patient (PatientID) of an
    input that holds several patients or studies (refused otherwise).
    """
    with analyzed(path, config, progress=progress, series=series, patient=patient) as analysis:
        return analysis


@contextmanager
def analyzed(
    path: Any,
    config: Config | None = None,
    *,
    progress: ProgressCallback | None = None,
    series: str | None = None,
    patient: str | None = None,
) -> Iterator[Analysis]:
    """Read and analyse ``path``, keeping its source files readable until the block ends.

    For a ``.zip`` or in-memory datasets the files live in a temporary folder
    (``analysis.scan.info.source_root``) that is removed when the block ends: write the outputs
    inside it::

        with analyzed("series.zip") as analysis:
            write_outputs(analysis, out)
    """
    from pneumolens.io import open_scan

    timings: dict[str, float] = {}
    timer = _Timer(progress, timings)
    with ExitStack() as keep:
        with timer.stage("read"):
            scan = keep.enter_context(open_scan(path, series=series, patient=patient))
        yield analyze(scan, config, progress=progress, timings=timings)


def _z_from_affine(scan: CTScan) -> tuple[float, ...]:
    """Patient z (mm) of each slice centre, for inputs without per-slice positions."""
    k = range(scan.shape[0])
    return tuple(float(scan.affine[2, 0] * i + scan.affine[2, 3]) for i in k)
