"""DICOM SEG, TID 1500 SR and secondary captures: read back with highdicom and pydicom, frame by
frame against the NIfTI masks, numbers against analysis.json, and checked by dciodvfy."""

from __future__ import annotations

import json

import highdicom as hd
import numpy as np
import pydicom
import pytest
from dicom_helpers import (
    analysis_of,
    dciodvfy,
    invalid_source_uids,
    nifti_values_on_planes,
    not_inherited,
    seg_frames,
    sr_groups,
)

from pneumolens.errors import InputError
from pneumolens.export.dicom import write_dicom_outputs
from pneumolens.export.dicom_common import UID_ROOT
from pneumolens.export.dicom_seg import segment_specs
from pneumolens.export.json import analysis_to_dict
from pneumolens.export.nifti import write_mask_nifti
from pneumolens.io.dicom_source import PATIENT_KEYWORDS, STUDY_KEYWORDS

ACQUISITIONS = ["axial", "reversed-z", "coronal"]


def _write_all(analysis, out):
    """What ``analyze --dicom`` writes: NIfTI masks, analysis.json and the DICOM outputs."""
    out.mkdir(parents=True, exist_ok=True)
    write_mask_nifti(analysis.lungs.labels, analysis.scan.affine, out / "lungs.nii.gz")
    write_mask_nifti(analysis.lesions.labels, analysis.scan.affine, out / "lesions.nii.gz")
    if analysis.regions is not None:  # lobes (default) or zones: segments of the SEG too
        write_mask_nifti(analysis.regions.labels, analysis.scan.affine, out / "regions.nii.gz")
    files = write_dicom_outputs(analysis, out / "dicom")
    data = analysis_to_dict(analysis)
    (out / "analysis.json").write_text(json.dumps(data))
    return files, data


@pytest.fixture(scope="module", params=ACQUISITIONS)
def written(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    analysis = analysis_of(tmp / "series", request.param)
    files, data = _write_all(analysis, tmp / "out")
    return analysis, tmp / "out", files, data


def check_seg_against_nifti(analysis, out):
    """Every SEG frame equals the NIfTI mask on the source slice it references, no frame is
    missing, and each frame carries that slice's own position and orientation."""
    source = analysis.scan.info.dicom
    by_uid = {uid: k for k, uid in enumerate(source.sop_instance_uids) if uid}
    by_position = {tuple(np.round(p, 3)): k for k, p in enumerate(source.positions)}
    specs = segment_specs(analysis)
    names = ("lungs", "lesions") + (("regions",) if analysis.regions is not None else ())
    planes = {name: nifti_values_on_planes(out / f"{name}.nii.gz", source) for name in names}
    frames = seg_frames(out / "dicom" / "seg.dcm")
    seen = set()
    for frame in frames:
        k = by_position[tuple(np.round(frame["position"], 3))]
        if frame["source_uid"]:
            assert by_uid[frame["source_uid"]] == k  # references the image at its own position
        np.testing.assert_allclose(frame["orientation"], source.orientations[k], atol=1e-6)
        spec = specs[frame["segment"] - 1]
        expected = planes[spec.source][k] == spec.value
        np.testing.assert_array_equal(frame["pixels"], expected, err_msg=f"{spec.key} on slice {k}")
        seen.add((frame["segment"], k))
    # empty frames are omitted, non-empty ones are all there
    for number, spec in enumerate(specs, start=1):
        present = {k for k in range(source.n_slices) if (planes[spec.source][k] == spec.value).any()}
        assert present == {k for n, k in seen if n == number}, f"SEG frames of {spec.key}"
    return frames


def test_seg_frames_equal_the_nifti_masks(written):
    analysis, out, _, _ = written
    frames = check_seg_against_nifti(analysis, out)
    assert {f["segment"] for f in frames} >= {1, 2}  # both lungs present


def test_seg_reads_back_with_highdicom(written):
    analysis, out, _, _ = written
    seg = hd.seg.segread(out / "dicom" / "seg.dcm")
    source = analysis.scan.info.dicom
    assert seg.SegmentationType == "BINARY"
    assert seg.SegmentsOverlap == "YES"  # lesions lie inside the lungs
    assert seg.FrameOfReferenceUID == source.frame_of_reference_uid
    assert seg.StudyInstanceUID == source.study_instance_uid
    assert seg.SeriesInstanceUID != source.series_instance_uid and seg.SeriesInstanceUID.startswith(UID_ROOT)
    assert seg.SOPInstanceUID.startswith(UID_ROOT)
    labels = [seg.get_segment_description(n).SegmentLabel for n in seg.segment_numbers]
    lobes = ["Upper lobe of right lung", "Middle lobe of right lung", "Lower lobe of right lung",
             "Upper lobe of left lung", "Lower lobe of left lung"] if analysis.regions is not None else []
    assert [lab for lab in labels if "lobe" not in lab] == ["Right lung", "Left lung", "Ground-glass opacity",
                                                             "Consolidation"]
    assert [lab for lab in labels if "lobe" in lab] == lobes
    right = seg.get_segment_description(1)
    assert (right.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
            right.SegmentedPropertyTypeCodeSequence[0].CodeValue) == ("91723000", "3341006")
    consolidation = seg.get_segment_description(labels.index("Consolidation") + 1)
    assert consolidation.SegmentedPropertyTypeCodeSequence[0].CodeValue == "95436008"
    assert consolidation.SegmentAlgorithmType == "AUTOMATIC"
    assert "pneumolens" in consolidation.SegmentAlgorithmName and seg.SoftwareVersions.startswith("pneumolens")
    # highdicom's own source-image lookup gives the same pixels as the NIfTI lesion mask
    uids = [u for u in source.sop_instance_uids]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[labels.index("Ground-glass opacity") + 1, labels.index("Consolidation") + 1])
    ggo = (analysis.lesions.labels == 1).sum()
    cons = (analysis.lesions.labels == 2).sum()
    assert pixels[..., 0].sum() == ggo and pixels[..., 1].sum() == cons


def test_identity_is_the_sources_and_nothing_else(written):
    analysis, out, files, _ = written
    source = analysis.scan.info.dicom
    header = source.datasets[0]
    paths = [out.parent / "out" / f for kind in ("seg", "sr", "sc") for f in files[kind]]
    assert len(files["sc"]) >= 2
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in PATIENT_KEYWORDS + STUDY_KEYWORDS[:7]:
            assert ds.get(keyword) == header.get(keyword) or (not ds.get(keyword) and not header.get(keyword)), keyword
        assert ds.SeriesInstanceUID.startswith(UID_ROOT) and ds.SOPInstanceUID.startswith(UID_ROOT)
        assert ds.Manufacturer == "pneumolens"
        # nothing else from the source: not its equipment, kernel, series or instance identifiers
        assert "ConvolutionKernel" not in ds and ds.get("StationName") is None
        text = str(ds)
        for value in (header.ManufacturerModelName, header.SeriesDescription, header.ConvolutionKernel):
            assert str(value) not in text
        assert source.series_instance_uid not in {ds.SeriesInstanceUID, ds.SOPInstanceUID}


def test_sr_numbers_equal_analysis_json(written):
    analysis, out, _, data = written
    groups = sr_groups(out / "dicom" / "sr.dcm")
    specs = segment_specs(analysis)
    for region in data["regions"]:
        group = groups[f"region {region['name']}"]
        expected = {"118565006": region["volume_ml"], "112031": region["mean_hu"], "LESVOL": region["lesion_ml"],
                    "LESPCT": region["lesion_percent"], "GGOVOL": region["ggo_ml"],
                    "CONVOL": region["consolidation_ml"], "LESHU": region["lesion_mean_hu"]}
        for code, value in expected.items():
            if value is None:  # NaN in the analysis, null in JSON: left out of the SR
                assert code not in group["numbers"]
            else:
                assert group["numbers"][code] == pytest.approx(value, rel=1e-9, abs=1e-9), (region["name"], code)
        assert group["units"]["118565006"] == "ml" and group["units"]["112031"] == "[hnsf'U]"
        assert group["units"]["LESPCT"] == "%"
        keys = [s.key for s in specs]
        if region["name"] in keys:  # the group references the region's own segment
            assert group["segment"] == keys.index(region["name"]) + 1
    assessment = data.get("assessment")
    if assessment is not None:  # the pipeline's assessment: numbers and texts
        group = groups["assessment"]
        if assessment["p_pneumonia"] is not None:
            assert group["numbers"]["ASSESSPPNEUMONIA"] == pytest.approx(assessment["p_pneumonia"], rel=1e-9)
        meanings = {meaning for _, meaning in group["codes"]}
        assert {assessment["category"], assessment["priority"]} <= meanings
        assert {r[:64] for r in assessment["reasons"]} <= meanings
    sr = hd.sr.srread(out / "dicom" / "sr.dcm")
    seg = pydicom.dcmread(out / "dicom" / "seg.dcm", stop_before_pixels=True)
    evidence = {i.ReferencedSOPInstanceUID for s in sr.CurrentRequestedProcedureEvidenceSequence[0]
                .ReferencedSeriesSequence for i in s.ReferencedSOPSequence}
    assert seg.SOPInstanceUID in evidence
    assert set(analysis.scan.info.dicom.sop_instance_uids) <= evidence


def test_dciodvfy_reports_no_errors(written):
    """No error, and no warning other than the private coding scheme's (a valid synthetic source
    leaves nothing to inherit)."""
    analysis, out, files, _ = written
    assert invalid_source_uids(analysis.scan.info.dicom) == set()
    for kind in ("seg", "sr", "sc"):
        for name in files[kind]:
            errors, warnings = dciodvfy(out / name)
            assert errors == [], f"{name}: {errors[:5]}"
            assert not_inherited(errors, warnings, analysis.scan.info.dicom) == [], name


def test_volume_input_is_an_input_error(tmp_path):
    from dicom_helpers import phantom

    from pneumolens.config import Config
    from pneumolens.io.scan import scan_from_array
    from pneumolens.pipeline import analyze

    p = phantom()
    analysis = analyze(scan_from_array(p.volume, p.spacing), Config(method="density"))
    with pytest.raises(InputError, match="DICOM outputs need a DICOM input"):
        write_dicom_outputs(analysis, tmp_path / "dicom")
    assert not (tmp_path / "dicom").exists()


@pytest.mark.realdata
@pytest.mark.slow
def test_real_series_round_trip(shared_data, tmp_path):
    """COVID-CT-MD P002 (JPEG-Lossless, no Frame of Reference or SOP Instance UIDs in the export):
    SEG frames equal the NIfTI masks slice by slice, the SR numbers equal analysis.json."""
    from pneumolens.config import Config
    from pneumolens.io import load_scan
    from pneumolens.pipeline import analyze

    analysis = analyze(load_scan(shared_data / "covid_ct_md_P002" / "dicom"), Config(method="density"))
    assert analysis.scan.info.dicom.frame_of_reference_uid is None  # the export lacks it: a new one is made
    out = tmp_path / "out"
    _, data = _write_all(analysis, out)
    frames = check_seg_against_nifti(analysis, out)
    assert {f["segment"] for f in frames} == set(range(1, 10))  # 2 lungs, 5 lobes, GGO, consolidation
    seg = pydicom.dcmread(out / "dicom" / "seg.dcm", stop_before_pixels=True)
    assert seg.FrameOfReferenceUID.startswith(UID_ROOT)
    groups = sr_groups(out / "dicom" / "sr.dcm")
    lungs = next(r for r in data["regions"] if r["name"] == "lungs")
    assert groups["region lungs"]["numbers"]["LESPCT"] == pytest.approx(lungs["lesion_percent"], rel=1e-9)
    assert groups["region lungs"]["numbers"]["118565006"] == pytest.approx(lungs["volume_ml"], rel=1e-9)
    check_dciodvfy_on_real_outputs(analysis, out)


def check_dciodvfy_on_real_outputs(analysis, out):
    """dciodvfy on SEG, SR and every SC: whatever it reports is inherited from the source.

    P002's export has UUIDs as Study and Series Instance UIDs (invalid UIDs, PS3.5 9.1) and
    empty SOP Instance UIDs; the outputs must repeat the study UID and reference the series and
    images, so dciodvfy reports those values (docs/dicom-outputs.md). Any other message fails.
    """
    source = analysis.scan.info.dicom
    bad = invalid_source_uids(source)
    assert {"", str(source.study_instance_uid), str(source.series_instance_uid)} <= bad  # what P002 is known for
    inherited = []
    for path in [out / "dicom" / "seg.dcm", out / "dicom" / "sr.dcm", *sorted((out / "dicom" / "sc").glob("*.dcm"))]:
        errors, warnings = dciodvfy(path)
        assert not_inherited(errors, warnings, source) == [], path.name
        inherited += errors
    assert any(str(source.study_instance_uid) in line for line in inherited)  # the check saw them


@pytest.fixture(scope="module")
def with_lobes(tmp_path_factory):
    """The axial phantom with five lobe-like regions (each lung cut along z) in ``analysis.regions``."""
    from dataclasses import replace

    from pneumolens.analysis import LOBE_NAMES, Regions
    from pneumolens.findings import quantify

    tmp = tmp_path_factory.mktemp("lobes")
    analysis = analysis_of(tmp / "series", "axial")
    lungs = analysis.lungs.labels
    z = np.arange(lungs.shape[0])[:, None, None]
    right_cut = np.percentile(np.nonzero(lungs == 1)[0], [33, 66])
    left_cut = np.median(np.nonzero(lungs == 2)[0])
    labels = np.zeros_like(lungs)
    labels[(lungs == 1) & (z >= right_cut[1])] = 1
    labels[(lungs == 1) & (z >= right_cut[0]) & (z < right_cut[1])] = 2
    labels[(lungs == 1) & (z < right_cut[0])] = 3
    labels[(lungs == 2) & (z >= left_cut)] = 4
    labels[(lungs == 2) & (z < left_cut)] = 5
    regions = Regions(labels=labels, names=dict(LOBE_NAMES), kind="lobes", method="test:z-cuts")
    scan = analysis.scan
    findings = quantify(scan.volume, analysis.lungs, analysis.lesions, spacing=scan.spacing,
                        z_positions_mm=scan.info.z_positions_mm, regions=regions)
    analysis = replace(analysis, regions=regions, findings=findings)
    out = tmp / "out"
    out.mkdir()
    write_mask_nifti(regions.labels, scan.affine, out / "regions.nii.gz")
    _, data = _write_all(analysis, out)
    return analysis, out, data


def test_lobes_are_snomed_coded_segments_on_the_right_frames(with_lobes):
    analysis, out, data = with_lobes
    seg = hd.seg.segread(out / "dicom" / "seg.dcm")
    codes = [seg.get_segment_description(n).SegmentedPropertyTypeCodeSequence[0].CodeValue
             for n in seg.segment_numbers]
    assert codes == ["3341006", "44029006", "42400003", "72481006", "266005", "44714003", "41224006",
                     "112120", "95436008"]
    source = analysis.scan.info.dicom
    planes = nifti_values_on_planes(out / "regions.nii.gz", source)
    by_position = {tuple(np.round(p, 3)): k for k, p in enumerate(source.positions)}
    frames = [f for f in seg_frames(out / "dicom" / "seg.dcm") if 3 <= f["segment"] <= 7]
    assert {f["segment"] for f in frames} == {3, 4, 5, 6, 7}
    for frame in frames:
        k = by_position[tuple(np.round(frame["position"], 3))]
        np.testing.assert_array_equal(frame["pixels"], planes[k] == frame["segment"] - 2)
    groups = sr_groups(out / "dicom" / "sr.dcm")
    for region in data["regions"]:
        group = groups[f"region {region['name']}"]
        assert group["numbers"]["118565006"] == pytest.approx(region["volume_ml"], rel=1e-9)
        if region["name"] in ("RUL", "RML", "RLL", "LUL", "LLL"):
            assert group["segment"] == 3 + ["RUL", "RML", "RLL", "LUL", "LLL"].index(region["name"])


def test_lobe_outputs_pass_dciodvfy(with_lobes):
    analysis, out, _ = with_lobes
    for name in ("seg.dcm", "sr.dcm"):
        errors, warnings = dciodvfy(out / "dicom" / name)
        assert errors == [], f"{name}: {errors[:5]}"
        assert not_inherited(errors, warnings, analysis.scan.info.dicom) == [], name


def test_scores_and_assessment_go_into_the_sr(with_lobes, tmp_path):
    """Scores and the assessment (whatever fields their owners give them) become SR numbers and
    qualitative evaluations; the SR stays valid."""
    from dataclasses import dataclass, replace

    from pneumolens.export.dicom_seg import build_seg
    from pneumolens.export.dicom_sr import build_sr

    @dataclass(frozen=True)
    class Scores:
        method: str
        ct_severity: int
        per_lobe: dict

    @dataclass(frozen=True)
    class Assessment:
        method: str
        p_pneumonia: float
        category: str
        priority: str
        reasons: tuple

    analysis, _, _ = with_lobes
    analysis = replace(
        analysis,
        scores=Scores("lobes:test", 7, {"RUL": 1, "LLL": 3}),
        assessment=Assessment("rules v1", 0.83, "covid19", "urgent", ("bilateral GGO", "peripheral")),
    )
    seg = build_seg(analysis)
    seg.save_as(tmp_path / "seg.dcm")
    build_sr(analysis, seg).save_as(tmp_path / "sr.dcm")
    groups = sr_groups(tmp_path / "sr.dcm")
    assert groups["scores"]["numbers"]["SCORECTSEVERITY"] == 7
    assert groups["scores"]["numbers"]["SCOREPERLOBERUL"] == 1
    assessment = groups["assessment"]
    assert assessment["numbers"]["ASSESSPPNEUMONIA"] == pytest.approx(0.83)
    meanings = {meaning for _, meaning in assessment["codes"]}
    assert {"covid19", "urgent", "bilateral GGO", "peripheral", "rules v1"} <= meanings
    errors, warnings = dciodvfy(tmp_path / "sr.dcm")
    assert errors == []
    assert not_inherited(errors, warnings, analysis.scan.info.dicom) == []


def test_segments_overlap():
    from pneumolens.export.dicom_seg import segments_overlap

    frames = np.zeros((2, 4, 4, 3), dtype=bool)
    frames[0, 0, 0, 0] = frames[1, 1, 1, 1] = frames[1, 2, 2, 2] = True
    assert not segments_overlap(frames)
    frames[1, 2, 2, 0] = True
    assert segments_overlap(frames)
    assert not segments_overlap(np.moveaxis(np.zeros((3, 2, 4, 4), dtype=bool), 0, -1))


def test_only_uids_invalid_in_the_source_count_as_inherited():
    """The dciodvfy classifier of the real-series test: an invalid source UID is inherited; an
    invalid UID, empty reference or any other message where the source is valid is ours."""
    from types import SimpleNamespace

    uuid = "896911bf-1143-4c8d-8f04-f3cd1a7f6204"
    invalid = SimpleNamespace(study_instance_uid=uuid, series_instance_uid="1.2.3", sop_instance_uids=["", "1.2.4"],
                              study={"StudyDate": "20200101"})
    valid = SimpleNamespace(study_instance_uid="1.2.5", series_instance_uid="1.2.3", sop_instance_uids=["1.2.4"],
                            study={"StudyDate": "20200101", "StudyTime": "120000", "StudyID": "7"})
    errors = [
        f'Error - Illegal root for UID - "{uuid}" in (0x0020,0x000d) Study Instance UID',
        (f"Error - Value invalid for this VR - (0x0020,0x000d) UI Study Instance UID  UI [1] = <{uuid}> - "
        "Character invalid for this VR = '-' (0x2d)"),
        ("Error - Empty attribute (no value) Type 1 Required Element=<ReferencedSOPInstanceUID> "
        "Module=<SOPInstanceReferenceMacro>"),
        "Error - Dicom dataset contains invalid data values for Value Representations",
    ]
    warnings = ["Warning - Missing attribute or value that would be needed to build DICOMDIR - Study ID"]
    assert invalid_source_uids(invalid) == {uuid, ""}
    assert not_inherited(errors, warnings, invalid) == []
    assert not_inherited(errors, warnings, valid) == errors + warnings
    ours = "Error - Missing attribute Type 2C Conditional Element=<Laterality> Module=<GeneralSeries>"
    assert not_inherited([*errors, ours], [], invalid) == [ours]
    date = "Warning - Missing attribute or value that would be needed to build DICOMDIR - Study Date"
    assert not_inherited([], [date], invalid) == [date]  # the source has a study date: ours
