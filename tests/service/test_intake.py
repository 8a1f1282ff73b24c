"""The DICOM receiver: allow-list, malformed data sets, non-CT series, a 2,000-image study."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from servicekit import free_port, require_executable, send_files, storescu

from pneumolens.service.intake import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_SUCCESS,
    StorageSCP,
    skip_reason,
)
from pneumolens.service.store import Store


@pytest.mark.parametrize(("modality", "body_part", "reason"), [
    ("CT", None, None),
    ("CT", "CHEST", None),
    ("CT", "chest", None),
    ("CT", "HEAD", "body part examined HEAD, not chest"),
    ("MR", "CHEST", "modality MR, not CT"),
    (None, None, "modality missing, not CT"),
    ("SEG", None, "modality SEG, not CT"),
])
def test_skip_reason(modality, body_part, reason):
    assert skip_reason(modality, body_part) == reason


@pytest.fixture
def scp(tmp_path):
    store = Store(tmp_path / "service.sqlite")
    released = []
    receiver = StorageSCP(store, tmp_path, port=free_port(), allowed_ae_titles=("CT1", "CT2"),
                          on_release=released.append)
    receiver.start()
    receiver.released = released
    yield receiver
    receiver.stop()
    store.close()


def _tiny_ct(study: str, series: str, *, modality: str = "CT", n: int = 1, size: int = 8) -> list[Dataset]:
    """Minimal CT Image Storage data sets (small pixels: the receiver's rules, not the analysis)."""
    out = []
    for i in range(n):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.Modality = modality
        ds.InstanceNumber = i + 1
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = bytes(2 * size * size)
        ds.file_meta = Dataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        out.append(ds)
    return out


def test_a_caller_not_in_the_allow_list_is_refused(scp):
    with pytest.raises(ConnectionRefusedError, match="rejected: True"):
        send_files([], scp.port, calling="INTRUDER", datasets=_tiny_ct("1.2", "1.2.1"))
    with pytest.raises(ConnectionRefusedError, match="rejected: True"):
        send_files([], scp.port, calling="CT1", called="NOTUS", datasets=_tiny_ct("1.2", "1.2.1"))
    assert scp.store.studies() == []


def test_a_malformed_data_set_gets_cannot_understand_and_the_rest_is_filed(scp):
    bad = _tiny_ct("1.2", "1.2.1")[0]
    del bad.StudyInstanceUID
    good = _tiny_ct("1.2", "1.2.1", n=2)
    assert send_files([], scp.port, calling="CT1", datasets=[bad, *good]) == [
        STATUS_CANNOT_UNDERSTAND, STATUS_SUCCESS, STATUS_SUCCESS]
    (study,) = scp.store.studies()
    assert scp.store.study(study["id"])["series"][0]["n_images"] == 2
    assert scp.released == [("1.2.1",)]  # the association's series, reported at release


def test_non_ct_is_recorded_as_skipped_and_its_pixels_not_kept(scp, tmp_path):
    assert send_files([], scp.port, calling="CT2", datasets=_tiny_ct("3.4", "3.4.1", modality="MR", n=3)) == [0] * 3
    (study,) = scp.store.studies()
    assert study["status"] == "skipped" and study["reason"] == "modality MR, not CT"
    assert not (tmp_path / "incoming").exists()


def test_a_study_of_2000_images_is_received_whole(scp, tmp_path):
    require_executable("storescu", why="dcmtk sends the 2,000 images as a modality would")
    source = tmp_path / "source"
    source.mkdir()
    for i, ds in enumerate(_tiny_ct("5.6", "5.6.1", n=2000)):
        ds.save_as(source / f"{i:04d}.dcm", enforce_file_format=True)
    storescu(source, scp.port, calling="CT1")
    (study,) = scp.store.studies()
    assert scp.store.study(study["id"])["series"][0]["n_images"] == 2000
    assert len(list((tmp_path / "incoming").rglob("*.dcm"))) == 2000
    assert scp.store.complete_series(series_uids=("5.6.1",)) == [study["id"]]
    assert scp.store.claim_job(max_attempts=3).n_images == 2000
