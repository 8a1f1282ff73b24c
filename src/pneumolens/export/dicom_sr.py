"""Comprehensive 3D SR, TID 1500 Measurement Report, of an analysis (DICOM PS3.16 TID 1500).

Content (highdicom templates):

- Observer context: the device ``pneumolens`` (TID 1004), procedure reported LN 24627-2
  "Chest CT".
- Per region of ``analysis.findings`` (right lung, left lung, lobes or zones when present): a
  TID 1411 Volumetric ROI group referencing that region's segment of the SEG (and through it
  the source series), with finding type = the region's anatomy code (same code as the SEG
  segment).
- The whole lungs: a TID 1501 group with finding site SCT 39607008 Lung (no single segment).
- Each group holds the region's measurements (TID 300), in UCUM units (``ml``, ``%``,
  ``[hnsf'U]``, ``1``):

  ==============================  ==============================================================
  quantity                        concept name
  ==============================  ==============================================================
  region volume                   SCT 118565006 Volume
  region mean HU                  DCM 112031 Attenuation Coefficient, derivation SCT 373098007 Mean
  lesion volume                   99PNMLNS LESVOL "Lesion volume"
  lesion percent of region        99PNMLNS LESPCT "Lesion percent of region volume"
  ground-glass volume             99PNMLNS GGOVOL "Ground-glass opacity volume"
  consolidation volume            99PNMLNS CONVOL "Consolidation volume"
  lesion mean HU                  99PNMLNS LESHU "Lesion mean attenuation"
  ==============================  ==============================================================

  DICOM has no concepts for lesion burden per region, so these use the private coding scheme
  ``99PNMLNS`` (PS3.16 8.2: private schemes start with ``99``), declared in the
  CodingSchemeIdentificationSequence. Values that are NaN by the project's rule (empty region)
  are left out, as ``analysis.json`` writes ``null`` for them.
- Scores (``analysis.scores``, when present): a TID 1501 group of numeric measurements
  (``99PNMLNS``, unit ``1``), one per number.
- Assessment (``analysis.assessment``, when present): a TID 1501 group with probabilities as
  measurements (unit ``1``) and the category, priority and reasons as qualitative evaluations
  (``99PNMLNS`` coded values; reasons one evaluation each, the text in the code meaning).

Patient and study attributes come from the SEG (which copied them from the source); the SEG and
the source images are listed as evidence (Current Requested Procedure Evidence Sequence).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumolens.export.dicom_common import (
    MANUFACTURER,
    SERIES_NUMBERS,
    drop_source_equipment,
    lenient,
    new_uid,
    prepared_source_datasets,
    require_dicom_source,
    software_versions,
)
from pneumolens.export.dicom_encode import save_dicom
from pneumolens.export.dicom_seg import LUNG_CODE, SegmentSpec, segment_specs

if TYPE_CHECKING:
    from pneumolens.analysis import Analysis

PRIVATE_SCHEME = "99PNMLNS"
PRIVATE_SCHEME_NAME = "pneumolens private concepts"
#: RegionFindings field -> (private code value, code meaning, UCUM unit).
PRIVATE_REGION_MEASURES = {
    "lesion_ml": ("LESVOL", "Lesion volume", "ml"),
    "lesion_percent": ("LESPCT", "Lesion percent of region volume", "%"),
    "ggo_ml": ("GGOVOL", "Ground-glass opacity volume", "ml"),
    "consolidation_ml": ("CONVOL", "Consolidation volume", "ml"),
    "lesion_mean_hu": ("LESHU", "Lesion mean attenuation", "[hnsf'U]"),
}
UNITS = {
    "ml": ("ml", "UCUM", "milliliter"),
    "%": ("%", "UCUM", "percent"),
    "[hnsf'U]": ("[hnsf'U]", "UCUM", "Hounsfield unit"),
    "1": ("1", "UCUM", "no units"),
}
CHEST_CT = ("24627-2", "LN", "Chest CT")


def _code(value: str, scheme: str, meaning: str):
    from pydicom.sr.coding import Code

    return Code(value, scheme, meaning[:64])


def _private(value: str, meaning: str):
    return _code(value[:16], PRIVATE_SCHEME, meaning)


def _unit(unit: str):
    return _code(*UNITS[unit])


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def region_measurements(region) -> list[Any]:
    """TID 300 measurements of one :class:`~pneumolens.findings.RegionFindings`."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    out = []
    if _finite(region.volume_ml):
        out.append(hd.sr.Measurement(name=codes.SCT.Volume, value=float(region.volume_ml), unit=_unit("ml")))
    if _finite(region.mean_hu):
        out.append(
            hd.sr.Measurement(
                name=codes.DCM.AttenuationCoefficient,
                value=float(region.mean_hu),
                unit=_unit("[hnsf'U]"),
                derivation=codes.SCT.Mean,
            )
        )
    for field, (code, meaning, unit) in PRIVATE_REGION_MEASURES.items():
        value = getattr(region, field)
        if _finite(value):
            out.append(hd.sr.Measurement(name=_private(code, meaning), value=float(value), unit=_unit(unit)))
    return out


def _flatten_numbers(value: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """``(dotted.path, number)`` for every finite number in a dataclass/dict/sequence tree."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten_numbers(item, f"{prefix}.{key}" if prefix else str(key))
    elif _finite(value):
        yield prefix, float(value)


def _short_code(path: str) -> str:
    """A stable code value (SH, 16 characters) for a dotted field path."""
    import hashlib

    text = re.sub(r"[^A-Za-z0-9]", "", path.upper())
    if len(text) <= 16:
        return text
    return text[:10] + hashlib.sha1(path.encode()).hexdigest()[:6].upper()


def score_measurements(scores: Any) -> list[Any]:
    """One measurement per number in ``analysis.scores`` (unit ``1``)."""
    import highdicom as hd

    return [
        hd.sr.Measurement(name=_private(_short_code(f"score.{path}"), f"score {path}"), value=value, unit=_unit("1"))
        for path, value in _flatten_numbers(scores)
    ]


def assessment_content(assessment: Any) -> tuple[list[Any], list[Any]]:
    """Measurements (probabilities and other numbers) and qualitative evaluations (texts)."""
    import highdicom as hd

    measurements = [
        hd.sr.Measurement(
            name=_private(_short_code(f"assess.{path}"), f"assessment {path}"), value=value, unit=_unit("1")
        )
        for path, value in _flatten_numbers(assessment)
    ]
    evaluations = []
    fields = (
        {f.name: getattr(assessment, f.name) for f in dataclasses.fields(assessment)}
        if dataclasses.is_dataclass(assessment)
        else dict(assessment)
    )
    for name, value in fields.items():
        if isinstance(value, bool):  # e.g. the triage alert
            value = "yes" if value else "no"
        texts = [value] if isinstance(value, str) else (
            [v for v in value if isinstance(v, str)] if isinstance(value, (list, tuple)) else []
        )
        for k, text in enumerate(texts):
            concept = _private(_short_code(f"assess.{name}"), f"assessment {name}")
            evaluations.append(
                hd.sr.QualitativeEvaluation(name=concept, value=_private(_short_code(f"{name}.{k}.{text}"), text))
            )
    return measurements, evaluations


def _tracking(label: str):
    import highdicom as hd

    return hd.sr.TrackingIdentifier(uid=new_uid(), identifier=label[:64])


def _region_groups(analysis: Analysis, seg, specs: list[SegmentSpec]) -> list[Any]:
    import highdicom as hd

    source = analysis.scan.info.dicom
    number_of = {spec.key: n for n, spec in enumerate(specs, start=1)}
    groups = []
    for region in analysis.findings.regions:
        measurements = region_measurements(region)
        if region.name in number_of:
            spec = specs[number_of[region.name] - 1]
            segment = hd.sr.ReferencedSegment(
                sop_class_uid=seg.SOPClassUID,
                sop_instance_uid=seg.SOPInstanceUID,
                segment_number=number_of[region.name],
                source_series=hd.sr.SourceSeriesForSegmentation(source.series_instance_uid),
            )
            groups.append(
                hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                    tracking_identifier=_tracking(f"region {region.name}"),
                    referenced_segment=segment,
                    finding_type=_code(*spec.property_type),
                    finding_sites=[hd.sr.FindingSite(_code(*spec.anatomic_region))] if spec.anatomic_region else None,
                    measurements=measurements,
                )
            )
        else:  # the whole lungs (or a region without a segment)
            groups.append(
                hd.sr.MeasurementsAndQualitativeEvaluations(
                    tracking_identifier=_tracking(f"region {region.name}"),
                    finding_type=_code(*LUNG_CODE),
                    finding_sites=[hd.sr.FindingSite(_code(*LUNG_CODE))],
                    measurements=measurements,
                )
            )
    return groups


def build_sr(analysis: Analysis, seg, *, series_uid: str | None = None):
    """The TID 1500 Comprehensive 3D SR of ``analysis``, referencing ``seg`` and the source series."""
    import highdicom as hd
    from pydicom.dataset import Dataset
    from pydicom.sr.codedict import codes

    source = require_dicom_source(analysis)
    specs = segment_specs(analysis)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=new_uid(), name="pneumolens", manufacturer_name=MANUFACTURER, model_name=software_versions()[:64]
        ),
    )
    groups = _region_groups(analysis, seg, specs)
    scores = getattr(analysis, "scores", None)
    if scores is not None:
        measurements = score_measurements(scores)
        if measurements:
            groups.append(
                hd.sr.MeasurementsAndQualitativeEvaluations(
                    tracking_identifier=_tracking("scores"),
                    finding_sites=[hd.sr.FindingSite(_code(*LUNG_CODE))],
                    measurements=measurements,
                )
            )
    assessment = getattr(analysis, "assessment", None)
    if assessment is not None:
        measurements, evaluations = assessment_content(assessment)
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=_tracking("assessment"),
                measurements=measurements or None,
                qualitative_evaluations=evaluations or None,
            )
        )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=_code(*CHEST_CT),
        imaging_measurements=groups,
    )
    with lenient():
        datasets, _ = prepared_source_datasets(source)
        scheme = Dataset()
        scheme.CodingSchemeDesignator = PRIVATE_SCHEME
        scheme.CodingSchemeName = PRIVATE_SCHEME_NAME
        scheme.CodingSchemeResponsibleOrganization = "pneumolens project"
        sr = hd.sr.Comprehensive3DSR(
            evidence=[seg, *datasets],
            content=report[0],
            series_instance_uid=series_uid or new_uid(),
            series_number=SERIES_NUMBERS["sr"],
            sop_instance_uid=new_uid(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            is_complete=True,
            is_verified=False,
            series_description="pneumolens measurements",
        )
        sr.CodingSchemeIdentificationSequence = [scheme]
        drop_source_equipment(sr)
    return sr


def write_sr(analysis: Analysis, seg, path: str | Path, **options) -> Path:
    sr = build_sr(analysis, seg, **options)
    path = Path(path)
    save_dicom(sr, path)
    return path
