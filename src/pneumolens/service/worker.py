"""The worker pool: claims queued jobs, runs each analysis in a child process, stores results.

A job goes ``queued -> running -> analysed -> done``. The analysis runs in a child process
(:mod:`pneumolens.service.job`) so a crash or a kill of it cannot take the service down; a
child that dies or overruns ``timeout_s`` counts as a failed attempt and the job is queued
again (``failed`` after ``max_attempts``); bad input is ``skipped`` with the reason. Results
(``OUT/dicom/*.dcm``: SEG, SR, SC) go to Orthanc before the job is ``done``; storing the same
files again is harmless (same SOP Instance UIDs), so a job interrupted while storing is
resumed from the files on disk, and its study is alerted exactly once.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from pneumolens.service.config import ServiceConfig
from pneumolens.service.job import STATUS
from pneumolens.service.orthanc import OrthancClient, OrthancError
from pneumolens.service.results import summarise
from pneumolens.service.store import Job, Store

logger = logging.getLogger(__name__)


class WorkerPool:
    """``config.workers`` threads, each running one analysis child process at a time."""

    def __init__(self, config: ServiceConfig, store: Store, orthanc: OrthancClient | None):
        self.config, self.store, self.orthanc = config, store, orthanc
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._children: dict[str, subprocess.Popen] = {}
        self._store_lock = threading.Lock()
        store.add_listener(self.wake)

    def start(self) -> None:
        for job in self.store.jobs_to_store():
            self._store_results(job)
        for i in range(self.config.workers):  # each with its analysis process, started now (warm)
            thread = threading.Thread(target=self._run, name=f"worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("%d worker(s), %d thread(s) each", self.config.workers, self.config.threads_per_job)

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        for child in list(self._children.values()):
            child.terminate()
            child.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=30)

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()


    def _run(self) -> None:
        self._child()
        idle = 0
        while not self._stop.is_set():
            job = self.store.claim_job(max_attempts=self.config.analysis.max_attempts)
            if job is None:
                idle += 1
                if idle % 10 == 0 and self._store_lock.acquire(blocking=False):
                    try:  # results that could not be stored (PACS down): try again
                        for waiting in self.store.jobs_to_store():
                            self._store_results(waiting)
                    finally:
                        self._store_lock.release()
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            try:
                self._process(job)
            except Exception as exc:
                logger.exception("job %d: unexpected error", job.id)
                self.store.job_retry(job, f"{type(exc).__name__}: {exc}")

    def _process(self, job: Job) -> None:
        job_dir = self.config.data_dir / "jobs" / str(job.id)
        out = self.config.data_dir / "results" / f"study-{job.study_id}-job-{job.id}"
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / STATUS).unlink(missing_ok=True)
        settings = self.config.analysis
        spec = {"files": self.store.job_files(job), "out": str(out), "method": settings.method,
                "weights": str(settings.weights) if settings.weights else None,
                "threads": self.config.threads_per_job, "dicom": settings.dicom}
        (job_dir / "spec.json").write_text(json.dumps(spec))
        logger.info("job %d: analysing study %d (%d images, attempt %d)", job.id, job.study_id,
                    len(spec["files"]), job.attempts)
        code = self._run_child(job, job_dir / "spec.json", timeout=settings.timeout_s)
        if self._stop.is_set() and code != 0:
            return  # the service is stopping: the job stays 'running' and is queued again at start-up
        status_file = job_dir / STATUS
        if code is None:
            self.store.job_retry(job, f"the analysis took longer than {settings.timeout_s:.0f} s and was stopped")
            return
        if code != 0 or not status_file.is_file():
            self.store.job_retry(job, f"the analysis process exited with code {code}")
            return
        status = json.loads(status_file.read_text())
        if status.get("input_error"):
            logger.info("job %d: skipped (input cannot be analysed)", job.id)
            self.store.job_skipped(job, status["error"])
            return
        job = self.store.job_analysed(job, out)
        self._store_results(job)

    def _child(self) -> subprocess.Popen:
        """This worker thread's analysis process, started when missing or dead."""
        slot = threading.current_thread().name
        child = self._children.get(slot)
        if child is not None and child.poll() is None:
            return child
        log_dir = self.config.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{slot}.log", "ab") as log:
            child = subprocess.Popen([sys.executable, "-m", "pneumolens.service.job"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._children[slot] = child
        return child

    def _run_child(self, job: Job, spec: Path, *, timeout: float) -> int | None:
        """Send ``spec`` to the analysis process; 0 when done, its exit code if it died, None on timeout."""
        child = self._child()
        try:
            child.stdin.write(f"{spec}\n".encode())
            child.stdin.flush()
        except OSError:
            return child.wait()
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([child.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                child.kill()
                child.wait()
                return None
            line = child.stdout.readline()
            if not line:  # the process died (killed, crashed, out of memory)
                return child.wait()
            if line.strip() == b"done":
                return 0

    def _store_results(self, job: Job) -> None:
        out = Path(job.out_dir)
        dicom_files = sorted((out / "dicom").rglob("*.dcm"))  # SEG, SR, secondary captures
        if self.orthanc is not None and self.config.orthanc.store_results and dicom_files:
            try:
                self.orthanc.store_all(dicom_files)
            except OrthancError as exc:
                logger.warning("job %d: results not stored yet (%s); retrying", job.id, exc)
                self.store.job_store_failed(job, str(exc))
                return
        data = json.loads((out / "analysis.json").read_text())
        summary, alert, priority = summarise(data, lesion_percent=self.config.alerts.lesion_percent)
        summary["dicom_outputs"] = [str(p.relative_to(out)) for p in dicom_files]
        summary["key_image"] = (out / "key_image.png").is_file()
        if self.store.job_done(job, summary=summary, alert=alert, priority=priority):
            logger.info("job %d: done (alert: %s)", job.id, alert)
