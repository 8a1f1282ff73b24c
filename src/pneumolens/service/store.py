"""The durable state of the service: studies, series, images, jobs and events, in SQLite.

One file (``DATA_DIR/service.sqlite``, WAL journal) holds everything the service knows, so a
crash or a restart loses nothing:

* every received image is recorded (and its file written) before the sender is told "success";
* a series is *complete* after its quiet time; a study whose series are all complete gets a job
  whose *fingerprint* is the hash of its CT images: the same images sent again give the same
  fingerprint and no new job (analysed once); new images give a new fingerprint and a new job;
* a job is claimed by a worker (``running``), then ``analysed`` (outputs on disk), then ``done``
  once its results are in the PACS; a job found ``running`` at start-up was interrupted and is
  queued again (its attempt counted); ``analysed`` jobs resume at storing the results;
* a job that keeps crashing is ``failed`` after ``max_attempts`` with its error; bad input is
  ``skipped`` with the reason at once, never retried;
* events (status changes, alerts) are numbered rows, so the event stream resumes from
  ``Last-Event-ID`` and webhook deliveries survive restarts.

The SQL is plain (no SQLite-only syntax besides ``INSERT OR IGNORE`` and the WAL pragma), so
the schema can move to a server database.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    study_uid TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    orthanc_id TEXT,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    status TEXT NOT NULL,
    alert INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    summary TEXT,
    reason TEXT,
    job_id INTEGER,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    series_uid TEXT NOT NULL UNIQUE,
    modality TEXT,
    body_part TEXT,
    n_images INTEGER NOT NULL DEFAULT 0,
    last_received REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT PRIMARY KEY,
    series_id INTEGER NOT NULL REFERENCES series(id),
    path TEXT NOT NULL,
    received REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    fingerprint TEXT NOT NULL,
    n_images INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    out_dir TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    type TEXT NOT NULL,
    study_id INTEGER,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id INTEGER PRIMARY KEY REFERENCES events(id),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL,
    delivered REAL,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: Study statuses, in the order a study goes through them.
STUDY_STATUSES = ("receiving", "queued", "analysing", "storing", "done", "skipped", "failed")

#: Worklist priority ranks (higher first): an alert, then studies still being worked on,
#: then routine results, then what could not be analysed.
PRIORITY_ALERT, PRIORITY_PENDING, PRIORITY_ROUTINE, PRIORITY_NONE = 3, 2, 1, 0


@dataclass(frozen=True)
class Job:
    """One analysis of one study's images (a row of ``jobs``)."""

    id: int
    study_id: int
    fingerprint: str
    n_images: int
    status: str
    attempts: int
    out_dir: str | None
    error: str | None


class Store:
    """Thread-safe access to the service database (one connection, one lock)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._listeners: list[Any] = []

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        self._notify()

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- listeners: told (in the writer's thread) when an event row was added --------------------
    def add_listener(self, callback: Any) -> None:
        self._listeners.append(callback)

    def _emit(self, db: sqlite3.Connection, kind: str, study_id: int | None, data: dict[str, Any]) -> int:
        cur = db.execute(
            "INSERT INTO events(time, type, study_id, data) VALUES (?, ?, ?, ?)",
            (time.time(), kind, study_id, json.dumps(data)),
        )
        return int(cur.lastrowid)

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()

    # -- intake ----------------------------------------------------------------------------------
    def knows_instance(self, sop_uid: str) -> bool:
        return bool(self._query("SELECT 1 FROM instances WHERE sop_uid = ?", (sop_uid,)))

    def add_instance(
        self,
        *,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        path: str | Path,
        modality: str | None,
        body_part: str | None,
        source: str,
        skip_reason: str | None = None,
        orthanc_id: str | None = None,
    ) -> bool:
        """Record one received image (its file already written); False if it was known already.

        ``skip_reason`` marks the series skipped (not CT, not chest): recorded, never analysed.
        """
        now = time.time()
        with self._tx() as db:
            study = db.execute("SELECT id, status FROM studies WHERE study_uid = ?", (study_uid,)).fetchone()
            if study is None:
                study_id = db.execute(
                    "INSERT INTO studies(study_uid, source, orthanc_id, first_seen, last_seen, status, priority,"
                    " updated) VALUES (?, ?, ?, ?, ?, 'receiving', ?, ?)",
                    (study_uid, source, orthanc_id, now, now, PRIORITY_PENDING, now),
                ).lastrowid
                self._emit(db, "study", study_id, {"id": study_id, "status": "receiving"})
            else:
                study_id = study["id"]
                db.execute("UPDATE studies SET last_seen = ?, orthanc_id = COALESCE(orthanc_id, ?) WHERE id = ?",
                           (now, orthanc_id, study_id))
            series = db.execute("SELECT id, status FROM series WHERE series_uid = ?", (series_uid,)).fetchone()
            status = "skipped" if skip_reason else "receiving"
            if series is None:
                series_id = db.execute(
                    "INSERT INTO series(study_id, series_uid, modality, body_part, last_received, status, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (study_id, series_uid, modality, body_part, now, status, skip_reason),
                ).lastrowid
            else:
                series_id = series["id"]
                if series["status"] == "complete" and not skip_reason:
                    status = "receiving"  # more images of a finished series: wait for the rest
                elif series["status"] == "skipped":
                    status = "skipped"
                db.execute("UPDATE series SET last_received = ?, status = ? WHERE id = ?", (now, status, series_id))
            if skip_reason:
                db.execute("UPDATE series SET n_images = n_images + 1 WHERE id = ?", (series_id,))
                self._queue_if_complete(db, study_id, now)  # a study of skipped series only: skipped
                return True
            added = db.execute(
                "INSERT OR IGNORE INTO instances(sop_uid, series_id, path, received) VALUES (?, ?, ?, ?)",
                (sop_uid, series_id, str(path), now),
            ).rowcount
            if added:
                db.execute("UPDATE series SET n_images = n_images + 1 WHERE id = ?", (series_id,))
            if study is not None and study["status"] not in ("receiving",) and status == "receiving":
                db.execute("UPDATE studies SET status = 'receiving', updated = ? WHERE id = ?", (now, study_id))
        return bool(added)

    def complete_series(self, *, quiet_s: float | None = None, series_uids: tuple[str, ...] = ()) -> list[int]:
        """Mark series complete (quiet for ``quiet_s`` or named); queue the studies now complete.

        Returns the ids of the studies that got a new job.
        """
        now = time.time()
        queued = []
        with self._tx() as db:
            rows = []
            if quiet_s is not None:
                rows += db.execute(
                    "SELECT id, study_id FROM series WHERE status = 'receiving' AND last_received <= ?",
                    (now - quiet_s,),
                ).fetchall()
            for uid in series_uids:
                rows += db.execute(
                    "SELECT id, study_id FROM series WHERE status = 'receiving' AND series_uid = ?", (uid,)
                ).fetchall()
            studies = sorted({r["study_id"] for r in rows})
            for r in rows:
                db.execute("UPDATE series SET status = 'complete' WHERE id = ?", (r["id"],))
            for study_id in studies:
                if self._queue_if_complete(db, study_id, now):
                    queued.append(study_id)
        self._notify()
        return queued

    def refresh_study(self, study_id: int) -> bool:
        """Queue ``study_id`` if all its series are complete and its images changed (Orthanc link)."""
        with self._tx() as db:
            queued = self._queue_if_complete(db, study_id, time.time())
        self._notify()
        return queued

    def _queue_if_complete(self, db: sqlite3.Connection, study_id: int, now: float) -> bool:
        if db.execute("SELECT 1 FROM series WHERE study_id = ? AND status = 'receiving'", (study_id,)).fetchone():
            return False
        sops = [r[0] for r in db.execute(
            "SELECT i.sop_uid FROM instances i JOIN series s ON s.id = i.series_id "
            "WHERE s.study_id = ? AND s.status = 'complete' ORDER BY i.sop_uid", (study_id,))]
        if not sops:
            reasons = [r[0] for r in db.execute(
                "SELECT DISTINCT reason FROM series WHERE study_id = ? AND reason IS NOT NULL", (study_id,))]
            reason = "; ".join(reasons) or "no images to analyse"
            status = db.execute("SELECT status FROM studies WHERE id = ?", (study_id,)).fetchone()[0]
            if status == "receiving":
                self._set_study(db, study_id, "skipped", reason=reason, priority=PRIORITY_NONE)
            return False
        fingerprint = hashlib.sha256("\n".join(sops).encode()).hexdigest()
        last = db.execute(
            "SELECT id, fingerprint, status FROM jobs WHERE study_id = ? ORDER BY id DESC LIMIT 1", (study_id,)
        ).fetchone()
        if last is not None and last["fingerprint"] == fingerprint and last["status"] != "superseded":
            # The same images again: analysed once. Put the study back to its job's state.
            status = {"queued": "queued", "running": "analysing", "analysed": "storing"}.get(last["status"])
            study_status = db.execute("SELECT status FROM studies WHERE id = ?", (study_id,)).fetchone()[0]
            if study_status == "receiving":
                done = db.execute("SELECT status FROM jobs WHERE id = ?", (last["id"],)).fetchone()[0]
                self._set_study(db, study_id, status or {"done": "done"}.get(done, done))
            return False
        db.execute("UPDATE jobs SET status = 'superseded' WHERE study_id = ? AND status = 'queued'", (study_id,))
        job_id = db.execute(
            "INSERT INTO jobs(study_id, fingerprint, n_images, status, created) VALUES (?, ?, ?, 'queued', ?)",
            (study_id, fingerprint, len(sops), now),
        ).lastrowid
        db.execute("UPDATE studies SET job_id = ? WHERE id = ?", (job_id, study_id))
        self._set_study(db, study_id, "queued", priority=PRIORITY_PENDING)
        return True

    def _set_study(self, db: sqlite3.Connection, study_id: int, status: str, *, reason: str | None = None,
                   priority: int | None = None, alert: bool | None = None, summary: dict | None = None) -> None:
        sets, args = ["status = ?", "updated = ?"], [status, time.time()]
        if reason is not None or status in ("queued", "done"):
            sets.append("reason = ?")
            args.append(reason)
        for name, value in (("priority", priority), ("alert", None if alert is None else int(alert)),
                            ("summary", None if summary is None else json.dumps(summary))):
            if value is not None:
                sets.append(f"{name} = ?")
                args.append(value)
        db.execute(f"UPDATE studies SET {', '.join(sets)} WHERE id = ?", (*args, study_id))
        data = {"id": study_id, "status": status}
        if reason is not None:
            data["reason"] = reason
        self._emit(db, "study", study_id, data)

    # -- jobs ------------------------------------------------------------------------------------
    def recover(self) -> int:
        """At start-up: jobs left ``running`` by a killed service are queued again."""
        with self._tx() as db:
            rows = db.execute("SELECT id, study_id FROM jobs WHERE status = 'running'").fetchall()
            for r in rows:
                db.execute("UPDATE jobs SET status = 'queued', error = 'interrupted (service stopped)' WHERE id = ?",
                           (r["id"],))
                self._set_study(db, r["study_id"], "queued")
        return len(rows)

    def claim_job(self, *, max_attempts: int) -> Job | None:
        """Take the oldest queued job (``running``, attempt counted); None when there is none."""
        with self._tx() as db:
            while True:
                row = db.execute("SELECT * FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
                if row is None:
                    return None
                if row["attempts"] >= max_attempts:
                    self._finish(db, row, "failed", error=f"gave up after {row['attempts']} attempts: {row['error']}")
                    continue
                db.execute("UPDATE jobs SET status = 'running', attempts = attempts + 1, started = ? WHERE id = ?",
                           (time.time(), row["id"]))
                self._set_study(db, row["study_id"], "analysing")
                return self._job(db, row["id"])

    def job_files(self, job: Job) -> list[str]:
        """The image files of ``job``'s study (complete, analysable series), in a stable order."""
        return [r[0] for r in self._query(
            "SELECT i.path FROM instances i JOIN series s ON s.id = i.series_id "
            "WHERE s.study_id = ? AND s.status = 'complete' ORDER BY i.sop_uid", (job.study_id,))]

    def job_analysed(self, job: Job, out_dir: str | Path) -> Job:
        with self._tx() as db:
            db.execute("UPDATE jobs SET status = 'analysed', out_dir = ? WHERE id = ?", (str(out_dir), job.id))
            self._set_study(db, job.study_id, "storing")
            return self._job(db, job.id)

    def job_retry(self, job: Job, error: str) -> None:
        """A crash or timeout: back to the queue (``claim_job`` gives up after max attempts)."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET status = 'queued', error = ? WHERE id = ?", (error, job.id))
            self._set_study(db, job.study_id, "queued", reason=f"attempt {job.attempts} failed: {error}")
        self._notify()

    def job_store_failed(self, job: Job, error: str) -> None:
        """The results could not be stored (PACS unreachable): stays ``analysed``, retried later."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET error = ? WHERE id = ?", (error, job.id))
            self._set_study(db, job.study_id, "storing", reason=f"results not stored yet: {error}")

    def job_skipped(self, job: Job, reason: str) -> None:
        """The input cannot be analysed (an ``InputError``): recorded with the reason, not retried."""
        with self._tx() as db:
            self._finish(db, self._row(db, job.id), "skipped", error=reason)
        self._notify()

    def job_failed(self, job: Job, error: str) -> None:
        with self._tx() as db:
            self._finish(db, self._row(db, job.id), "failed", error=error)
        self._notify()

    def job_done(self, job: Job, *, summary: dict[str, Any], alert: bool, priority: int) -> bool:
        """Results are stored: the study is done, and alerted once. False if superseded meanwhile."""
        with self._tx() as db:
            row = self._row(db, job.id)
            if row["status"] == "done":
                return False
            newer = db.execute("SELECT 1 FROM jobs WHERE study_id = ? AND id > ? AND status != 'superseded'",
                               (job.study_id, job.id)).fetchone()
            db.execute("UPDATE jobs SET status = ?, finished = ?, error = NULL WHERE id = ?",
                       ("superseded" if newer else "done", time.time(), job.id))
            if newer:
                return False
            if alert:  # before 'done', so a reader stopping at 'done' has seen the alert
                event_id = self._emit(db, "alert", job.study_id, {"id": job.study_id, "job": job.id, **summary})
                db.execute("INSERT INTO deliveries(event_id, next_try) VALUES (?, ?)", (event_id, time.time()))
            self._set_study(db, job.study_id, "done", priority=priority, alert=alert, summary=summary)
        self._notify()
        return True

    def _finish(self, db: sqlite3.Connection, row: sqlite3.Row, status: str, *, error: str) -> None:
        db.execute("UPDATE jobs SET status = ?, finished = ?, error = ? WHERE id = ?",
                   (status, time.time(), error, row["id"]))
        newer = db.execute("SELECT 1 FROM jobs WHERE study_id = ? AND id > ?", (row["study_id"], row["id"])).fetchone()
        if not newer:
            self._set_study(db, row["study_id"], status, reason=error, priority=PRIORITY_NONE)

    def jobs_to_store(self) -> list[Job]:
        """Jobs whose outputs are on disk but not yet in the PACS (after a restart)."""
        return [self._job(self._db, r[0]) for r in self._query("SELECT id FROM jobs WHERE status = 'analysed'")]

    def _row(self, db: sqlite3.Connection, job_id: int) -> sqlite3.Row:
        return db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()

    def _job(self, db: sqlite3.Connection, job_id: int) -> Job:
        with self._lock:
            r = self._row(db, job_id)
        return Job(r["id"], r["study_id"], r["fingerprint"], r["n_images"], r["status"], r["attempts"],
                   r["out_dir"], r["error"])

    def jobs(self, study_id: int | None = None) -> list[Job]:
        sql, args = "SELECT id FROM jobs ORDER BY id", ()
        if study_id is not None:
            sql, args = "SELECT id FROM jobs WHERE study_id = ? ORDER BY id", (study_id,)
        return [self._job(self._db, r[0]) for r in self._query(sql, args)]

    # -- reading ---------------------------------------------------------------------------------
    def studies(self) -> list[dict[str, Any]]:
        """The worklist: by priority (alerts first), then arrival."""
        rows = self._query("SELECT * FROM studies ORDER BY priority DESC, first_seen ASC, id ASC")
        return [self._study_dict(r) for r in rows]

    def study(self, study_id: int) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM studies WHERE id = ?", (study_id,))
        if not rows:
            return None
        out = self._study_dict(rows[0])
        out["series"] = [dict(r) for r in self._query(
            "SELECT series_uid, modality, body_part, n_images, status, reason FROM series WHERE study_id = ? "
            "ORDER BY id", (study_id,))]
        out["jobs"] = [dict(r) for r in self._query(
            "SELECT id, status, attempts, n_images, created, started, finished, error FROM jobs "
            "WHERE study_id = ? ORDER BY id", (study_id,))]
        return out

    def _study_dict(self, r: sqlite3.Row) -> dict[str, Any]:
        out = {k: r[k] for k in ("id", "study_uid", "source", "status", "priority", "reason", "job_id",
                                  "first_seen", "last_seen", "updated")}
        out["alert"] = bool(r["alert"])
        out["summary"] = json.loads(r["summary"]) if r["summary"] else None
        return out

    def job_out_dir(self, study_id: int) -> Path | None:
        rows = self._query("SELECT j.out_dir FROM studies s JOIN jobs j ON j.id = s.job_id "
                           "WHERE s.id = ? AND j.status IN ('analysed', 'done')", (study_id,))
        return Path(rows[0][0]) if rows and rows[0][0] else None

    def events_after(self, event_id: int, *, limit: int = 500) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (event_id, limit))
        return [{"id": r["id"], "time": r["time"], "type": r["type"], "study_id": r["study_id"],
                 "data": json.loads(r["data"])} for r in rows]

    def last_event_id(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(id), 0) FROM events")[0][0])

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._query("SELECT status, COUNT(*) FROM jobs GROUP BY status")}

    # -- webhook deliveries ----------------------------------------------------------------------
    def due_deliveries(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT d.event_id, d.attempts, e.data, e.type FROM deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE d.delivered IS NULL AND d.next_try <= ? AND d.next_try >= 0 ORDER BY d.event_id", (time.time(),))
        return [{"event_id": r[0], "attempts": r[1], "data": json.loads(r[2]), "type": r[3]} for r in rows]

    def delivery_result(self, event_id: int, *, ok: bool, error: str | None, next_try: float | None) -> None:
        with self._tx() as db:
            if ok:
                db.execute("UPDATE deliveries SET attempts = attempts + 1, delivered = ?, last_error = NULL "
                           "WHERE event_id = ?", (time.time(), event_id))
            else:  # next_try None: given up (kept, with its error, never retried)
                db.execute("UPDATE deliveries SET attempts = attempts + 1, next_try = ?, last_error = ? "
                           "WHERE event_id = ?", (-1 if next_try is None else next_try, error, event_id))

    def deliveries(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._query("SELECT * FROM deliveries ORDER BY event_id")]

    # -- small key/value state (e.g. the last Orthanc change seen) ------------------------------
    def get_state(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM state WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_state(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                       (key, value, value))

    def series_status(self, series_uid: str) -> str | None:
        rows = self._query("SELECT status FROM series WHERE series_uid = ?", (series_uid,))
        return rows[0][0] if rows else None

    def study_id(self, study_uid: str) -> int | None:
        rows = self._query("SELECT id FROM studies WHERE study_uid = ?", (study_uid,))
        return int(rows[0][0]) if rows else None

    def study_uid(self, study_id: int) -> str | None:
        rows = self._query("SELECT study_uid FROM studies WHERE id = ?", (study_id,))
        return rows[0][0] if rows else None
