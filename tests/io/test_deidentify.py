"""``pneumolens deidentify``: no attribute listed by PS3.15 Table E.1-1 survives; pseudonyms and
UIDs are consistent within a run; the images still read as the same CT."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from io_helpers import phantom, write
from pydicom.uid import generate_uid

from pneumolens.cli.main import main
from pneumolens.io import load_scan
from pneumolens.io.deidentify import BASIC_PROFILE_CODE, PSEUDONYM_PREFIX, listed_tags

IDENTIFYING = {
    "InstitutionName": "St Example Hospital",
    "InstitutionAddress": "1 Example Road, Exampletown",
    "ReferringPhysicianName": "Doctor^Referring",
    "OperatorsName": "Operator^Olga",
    "PerformingPhysicianName": "Doctor^Performing",
    "StationName": "CTSTATION7",
    "DeviceSerialNumber": "SN-998877",
    "AccessionNumber": "ACC123456",
    "StudyID": "STUDY42",
    "PatientBirthDate": "19600229",
    "PatientAddress": "22 Patient Street",
    "OtherPatientIDs": "OTHER-ID-77",
    "StudyDescription": "CT THORAX Mr Smith",
    "SeriesDescription": "Lung 1mm Smith",
    "AcquisitionDate": "20240101",
    "ContentDate": "20240101",
    "InstanceCreationDate": "20240101",
}


def _patient(folder, name, patient_id, n=6):
    study = generate_uid()
    paths = write(folder, phantom(n=n), study_uid=study, extra={"PatientName": name, "PatientID": patient_id,
                                                                  **IDENTIFYING})
    for p in paths:  # a private block, and a nested reference to another image
        ds = pydicom.dcmread(p)
        block = ds.private_block(0x0029, "ACME PRIVATE", create=True)
        block.add_new(0x01, "LO", f"private note on {name}")
        item = pydicom.Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = pydicom.dcmread(paths[0], stop_before_pixels=True).SOPInstanceUID
        ds.ReferencedImageSequence = [item]
        ds.save_as(p)
    return paths


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deid")
    a = _patient(tmp / "in" / "Smith_John", "Smith^John", "MRN-0001")
    b = _patient(tmp / "in" / "Doe_Jane", "Doe^Jane", "MRN-0002")
    assert main(["deidentify", str(tmp / "in"), str(tmp / "out")]) == 0
    return tmp, a, b, sorted((tmp / "out").rglob("*.dcm"))


def test_no_listed_identifying_attribute_survives(run):
    _, a, b, out = run
    assert len(out) == len(a) + len(b)
    originals = [pydicom.dcmread(p) for p in a + b]
    listed = listed_tags()
    originals_by_sop = {}
    for ds in originals:
        originals_by_sop[ds.SOPInstanceUID] = ds
    for path in out:
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == BASIC_PROFILE_CODE[0]
        assert not any(e.tag.is_private for e in ds)  # private attributes removed
        raw = path.read_bytes()
        for original in originals:
            for tag in listed:
                if tag not in original or original[tag].VR == "SQ" or original[tag].value in (None, "", b""):
                    continue
                keyword = pydicom.datadict.keyword_for_tag(tag)
                kept = ds.get(tag)
                assert kept is None or kept.value in (None, "", b"") or kept.value != original[tag].value, (
                    f"{keyword} = {original[tag].value!r} survives in {path.name}")
                text = str(original[tag].value)
                if len(text) >= 6:  # and nowhere else in the file (nested, file meta, other tags)
                    assert text.encode() not in raw, f"{keyword} value {text!r} found in {path.name}"
        # nothing identifying in the path either
        assert "Smith" not in str(path) and "MRN" not in str(path)


def test_pseudonyms_and_uids_are_consistent_within_the_run(run):
    _, a, b, out = run
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in out]
    ids = {ds.PatientID for ds in datasets}
    assert len(ids) == 2 and all(i.startswith(PSEUDONYM_PREFIX) for i in ids)
    by_patient = {}
    for ds in datasets:
        by_patient.setdefault(ds.PatientID, []).append(ds)
    for group in by_patient.values():
        assert len({ds.StudyInstanceUID for ds in group}) == 1
        assert len({ds.SeriesInstanceUID for ds in group}) == 1
        assert len({ds.FrameOfReferenceUID for ds in group}) == 1
        assert len({str(ds.PatientName) for ds in group}) == 1
        sops = {ds.SOPInstanceUID for ds in group}
        # the nested reference follows the referenced image's new UID
        assert {ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID for ds in group} <= sops
        assert all(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID for ds in group)
    originals = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in a + b}
    assert not originals & {ds.SOPInstanceUID for ds in datasets}


def test_deidentified_series_reads_as_the_same_ct(run):
    _, a, _, out = run
    original = load_scan(a[0].parent)
    first = pydicom.dcmread(out[0], stop_before_pixels=True)
    scan = load_scan(out[0].parent)
    assert scan.shape == original.shape
    np.testing.assert_array_equal(scan.volume, original.volume)
    assert scan.info.dicom.patient["PatientID"] == first.PatientID


def test_a_second_run_gives_other_pseudonyms(run, tmp_path):
    _, a, _, out = run
    assert main(["deidentify", str(a[0].parent), str(tmp_path / "again")]) == 0
    again = pydicom.dcmread(next((tmp_path / "again").rglob("*.dcm")), stop_before_pixels=True)
    first_ids = {pydicom.dcmread(p, stop_before_pixels=True).PatientID for p in out}
    assert again.PatientID not in first_ids


def test_burned_in_images_are_left_out_and_empty_input_is_an_error(tmp_path, capsys):
    paths = write(tmp_path / "in", phantom(n=2), extra={"BurnedInAnnotation": "YES"})
    assert main(["deidentify", str(tmp_path / "in"), str(tmp_path / "out")]) == 2
    assert "no DICOM file could be de-identified" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and len(paths) == 2
