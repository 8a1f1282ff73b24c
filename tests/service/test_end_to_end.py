"""End to end on a real chest CT: C-STORE to `pneumolens serve`, alert on the event stream,
SEG and SR in Orthanc in the same study with the numbers of analysis.json."""

from __future__ import annotations

import importlib.util

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid
from servicekit import (
    REPO,
    require_executable,
    send_files,
    start_orthanc,
    start_server,
    wait_for_event,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def _sr_groups(path):
    """``tests/export/dicom_helpers.sr_groups``: the SR's measurement groups by tracking identifier."""
    spec = importlib.util.spec_from_file_location("pneumolens_dicom_helpers", REPO / "tests/export/dicom_helpers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.sr_groups(path)


def test_real_ct_alert_and_results_in_orthanc(shared_data, tmp_path):
    require_executable("Orthanc", why="the results go back into a real Orthanc")
    source = shared_data / "covid_ct_md_P002" / "dicom"
    (tmp_path / "orthanc").mkdir()
    orthanc = start_orthanc(tmp_path / "orthanc")
    server = None
    try:
        server = start_server(write_config(tmp_path, orthanc=orthanc, dicom_extra="quiet_s = 2.0", method="model"))
        # COVID-CT-MD's files have an empty SOP Instance UID, which C-STORE cannot carry: each
        # image gets one (derived from its file name), as the modality would have given it
        datasets = []
        for path in sorted(source.glob("*.dcm")):
            ds = pydicom.dcmread(path)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[path.name])
            datasets.append(ds)
        assert set(send_files([], server.dicom_port, datasets=datasets)) == {0}
        kind, alert = wait_for_event(server, lambda k, d: k == "alert" or d.get("status") in ("failed", "skipped"))
        assert kind == "alert", alert
        study = server.get(f"/api/studies/{alert['id']}").json()
        data = study["analysis"]
        assert study["status"] == "storing" or study["status"] == "done"
        assert alert["lesion_percent"] == data["lesions"]["percent_of_lungs"] > 5

        orthanc_study = httpx.post(orthanc.url + "/tools/lookup", content=study["study_uid"]).json()
        (orthanc_id,) = [item["ID"] for item in orthanc_study if item["Type"] == "Study"]
        series = httpx.get(f"{orthanc.url}/studies/{orthanc_id}/series").json()
        by_modality = {s["MainDicomTags"]["Modality"]: s for s in series}
        assert {"SEG", "SR"} <= set(by_modality)
        files = {}
        for modality in ("SEG", "SR"):
            (instance,) = by_modality[modality]["Instances"]
            files[modality] = tmp_path / f"{modality}.dcm"
            files[modality].write_bytes(httpx.get(f"{orthanc.url}/instances/{instance}/file").content)

        seg = pydicom.dcmread(files["SEG"], stop_before_pixels=True)
        assert seg.StudyInstanceUID == study["study_uid"]
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == data["input"]["series_instance_uid"]
        groups = _sr_groups(files["SR"])
        for region in data["regions"]:
            group = groups[f"region {region['name']}"]
            for code, key in (("118565006", "volume_ml"), ("LESVOL", "lesion_ml"), ("LESPCT", "lesion_percent"),
                              ("GGOVOL", "ggo_ml"), ("CONVOL", "consolidation_ml")):
                assert group["numbers"][code] == pytest.approx(region[key], rel=1e-9, abs=1e-9), (region["name"], key)
        wait_for_event(server, lambda k, d: d.get("status") == "done", after=alert["event_id"])
    finally:
        if server is not None:
            server.stop()
        orthanc.stop()
