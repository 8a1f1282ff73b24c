"""The durable queue: analysed once, re-analysed on new images, interrupted jobs retried, nothing lost."""

from __future__ import annotations

import pytest

from pneumolens.service.store import PRIORITY_ALERT, PRIORITY_ROUTINE, Store


def _add(store: Store, study: str, series: str, sop: str, *, modality: str = "CT", reason: str | None = None):
    return store.add_instance(study_uid=study, series_uid=series, sop_uid=sop, path=f"/x/{sop}.dcm",
                              modality=modality, body_part=None, source="dicom", skip_reason=reason)


def _receive(store: Store, study: str, series: str, sops, **kwargs) -> list[int]:
    for sop in sops:
        _add(store, study, series, sop, **kwargs)
    return store.complete_series(series_uids=(series,))


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "service.sqlite")
    yield s
    s.close()


def test_a_study_sent_twice_is_analysed_once_and_again_when_new_images_arrive(store):
    assert _receive(store, "1.2.3", "1.2.3.1", ["a", "b", "c"]) == [1]
    job = store.claim_job(max_attempts=3)
    store.job_analysed(job, "/out")
    assert store.job_done(job, summary={"lesion_percent": 1.0}, alert=False, priority=PRIORITY_ROUTINE)
    assert _receive(store, "1.2.3", "1.2.3.1", ["a", "b", "c"]) == []  # the same images again
    assert store.study(1)["status"] == "done"
    assert [j.status for j in store.jobs()] == ["done"]
    assert _receive(store, "1.2.3", "1.2.3.1", ["d"]) == [1]  # one new image: analysed again
    jobs = store.jobs()
    assert [j.status for j in jobs] == ["done", "queued"] and jobs[1].n_images == 4


def test_non_ct_series_are_skipped_with_the_reason_and_never_queued(store):
    assert _receive(store, "9.9", "9.9.1", ["m1", "m2"], modality="MR", reason="modality MR, not CT") == []
    study = store.study(1)
    assert study["status"] == "skipped" and study["reason"] == "modality MR, not CT"
    assert study["series"][0]["n_images"] == 2 and store.claim_job(max_attempts=3) is None


def test_an_interrupted_job_is_queued_again_and_a_job_that_keeps_failing_is_given_up(store):
    _receive(store, "1.2", "1.2.1", ["a"])
    job = store.claim_job(max_attempts=2)
    assert store.study(1)["status"] == "analysing"
    assert store.recover() == 1  # the service was killed mid-analysis
    assert store.study(1)["status"] == "queued"
    job = store.claim_job(max_attempts=2)
    assert job.attempts == 2
    store.job_retry(job, "the analysis process exited with code -9")
    assert store.claim_job(max_attempts=2) is None  # two attempts used: given up, error kept
    study = store.study(1)
    assert study["status"] == "failed" and "exited with code -9" in study["reason"]


def test_bad_input_is_skipped_at_once(store):
    _receive(store, "1.2", "1.2.1", ["a"])
    store.job_skipped(store.claim_job(max_attempts=3), "no lungs found")
    assert store.study(1)["status"] == "skipped" and store.study(1)["reason"] == "no lungs found"
    assert store.claim_job(max_attempts=3) is None


def test_done_is_recorded_and_alerted_exactly_once(store):
    _receive(store, "1.2", "1.2.1", ["a"])
    job = store.job_analysed(store.claim_job(max_attempts=3), "/out")
    assert store.job_done(job, summary={}, alert=True, priority=PRIORITY_ALERT)
    assert not store.job_done(job, summary={}, alert=True, priority=PRIORITY_ALERT)  # e.g. resumed storing
    assert [e["type"] for e in store.events_after(0)].count("alert") == 1
    assert len(store.deliveries()) == 1


def test_worklist_order_is_priority_then_arrival(store):
    for i, alert in enumerate([False, True, False, True]):
        _receive(store, f"1.{i}", f"1.{i}.1", [f"s{i}"])
    while (job := store.claim_job(max_attempts=3)) is not None:
        job = store.job_analysed(job, "/out")
        alert = job.study_id in (2, 4)
        store.job_done(job, summary={}, alert=alert, priority=PRIORITY_ALERT if alert else PRIORITY_ROUTINE)
    _receive(store, "1.9", "1.9.1", ["s9"])  # still queued: between alerts and routine results
    assert [s["id"] for s in store.studies()] == [2, 4, 5, 1, 3]


def test_new_images_during_an_analysis_supersede_its_result(store):
    _receive(store, "1.2", "1.2.1", ["a"])
    first = store.claim_job(max_attempts=3)
    _receive(store, "1.2", "1.2.1", ["b"])
    first = store.job_analysed(first, "/out1")
    assert not store.job_done(first, summary={}, alert=True, priority=PRIORITY_ALERT)
    assert not [e for e in store.events_after(0) if e["type"] == "alert"]
    second = store.claim_job(max_attempts=3)
    assert second.n_images == 2 and [j.status for j in store.jobs()] == ["superseded", "running"]


def test_state_survives_reopening(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    _receive(store, "1.2", "1.2.1", ["a", "b"])
    store.close()
    store = Store(tmp_path / "s.sqlite")
    assert store.claim_job(max_attempts=3).n_images == 2
    store.close()
