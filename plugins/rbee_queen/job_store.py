"""Job records that survive the queen: SQLite in the state dir, the only copy of a finished job.

A record is written when a job is accepted, when it starts running and when it finishes
(with its whole event log, so its stream can be replayed after a restart). A running job's
events are also written one by one as they happen, before any client sees them
(``live_events``, a row each, no fsync: WAL), so a queen that dies mid-answer knows every
event its clients have; at its finish they are folded into the job's log. Finished jobs
are not kept in memory (the registry holds a few recent ones): a lookup reads the record,
so the queen's memory follows the jobs that are live, not the history. Start-up reads
only the jobs the last queen left queued or running (``unfinished``: the queen places them
again), and the retention purge is a periodic indexed DELETE.

A write that fails (a full disk, a locked file) never reaches the job's stream: the record
waits in memory, is served from there, and is written on a later ``retry``. A file that is
damaged is moved aside and a fresh one started (``rbee_core.sqlite_files``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from rbee_core import hookimpl
from rbee_core.errors import InternalError, InvalidRequest
from rbee_core.event_log import EventLog
from rbee_core.events import Event, EventType
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job, JobState
from rbee_core.sqlite_files import is_damage, move_aside, open_sqlite

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "JobStore", "decode_cursor", "encode_cursor"]

log = logging.getLogger("rbee.queen.jobs")

DEFAULT_PAGE = 50
MAX_PAGE = 1000
PRUNE_BATCH = 1000  # rows per DELETE, so a big purge never holds the event loop for long
SCHEMA_VERSION = 3

# Small, fixed columns first: a listing reads them without walking the long ones' overflow
# pages. The event log, the one large value, has a table of its own that only a job's own
# lookup reads.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    model TEXT NOT NULL,          -- the request's model, as the client named it
    created_at REAL NOT NULL,
    started_at REAL,
    first_token_at REAL,
    finished_at REAL,
    worker TEXT,
    tokens INTEGER NOT NULL DEFAULT 0,
    events INTEGER NOT NULL DEFAULT 0,   -- how many (the log itself is in job_events)
    result TEXT,
    request TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    runs TEXT                     -- JSON: each time it was sent to a worker (Job.runs)
);
CREATE TABLE IF NOT EXISTS job_events (id TEXT PRIMARY KEY, log TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS live_events (
    job TEXT NOT NULL, id INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (job, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_model ON jobs (model, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
"""
_COLUMNS = (
    "id, state, model, created_at, started_at, first_token_at, finished_at, worker, tokens, "
    "events, result, request, text, runs"
)
_SAVE = f"""
INSERT INTO jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET state = excluded.state, started_at = excluded.started_at,
    first_token_at = excluded.first_token_at, finished_at = excluded.finished_at,
    worker = excluded.worker, tokens = excluded.tokens, events = excluded.events,
    result = excluded.result, text = excluded.text, runs = excluded.runs
"""
# Version 1 (one table, the event log inline, no model column), moved over once.
_MIGRATE_V1 = f"""
ALTER TABLE jobs RENAME TO jobs_v1;
{_SCHEMA}
INSERT INTO jobs ({_COLUMNS})
    SELECT id, state, json_extract(request, '$.model'), created_at, started_at, first_token_at,
           finished_at, worker, tokens, COALESCE(json_array_length(events), 0), result,
           request, text, NULL
    FROM jobs_v1;
INSERT INTO job_events SELECT id, events FROM jobs_v1 WHERE events IS NOT NULL;
DROP TABLE jobs_v1;
"""
RESTARTED = "the queen stopped while the job was {state}; it did not finish"


def encode_cursor(created_at: float, job_id: str) -> str:
    """The opaque ``next`` of a page: where the next (older) page starts."""
    raw = json.dumps([created_at, job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """``encode_cursor``'s arguments back, or ``InvalidRequest`` naming ``before``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        if isinstance(created_at, bool) or not isinstance(created_at, int | float):
            raise ValueError(created_at)
        if not isinstance(job_id, str):
            raise ValueError(job_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidRequest(
            f"before must be the 'next' cursor of an earlier page, got {cursor[:80]!r}",
            field="before",
        ) from None
    return float(created_at), job_id


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    # No fsync per commit (WAL syncs at checkpoints): a saved job survives the queen
    # crashing, and a save costs microseconds, not a disk flush, on every job's way to
    # its first token.
    db.execute("PRAGMA synchronous=NORMAL")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    old = (
        db.execute("SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'model'").fetchone()
        is None
        and db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'"
        ).fetchone()
        is not None
    )
    if version < SCHEMA_VERSION and old:
        db.executescript(f"BEGIN; {_MIGRATE_V1} COMMIT;")
    else:
        if version == 2:  # version 2 had no runs
            db.execute("ALTER TABLE jobs ADD COLUMN runs TEXT")
        db.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class JobStore:
    def __init__(self, path: Path, retention: float) -> None:
        self.path = path
        self.retention = retention
        # Used from the event loop's thread only; created before the loop starts.
        self._db, self.damaged = open_sqlite(
            path, _setup, program="queen-rbee", lost="the job records in it are not in the new one"
        )
        self._unsaved: dict[str, Job] = {}  # records whose last write failed: retried
        self._failing = False  # a write failed and no write has worked since (log once)
        self.count = 0
        self.count = self._read("SELECT count(*) FROM jobs")[0][0]

    # -- writing --------------------------------------------------------------------------

    @property
    def unsaved(self) -> int:
        """How many records wait to be written (their write failed)."""
        return len(self._unsaved)

    def save(self, job: Job) -> None:
        """Write the job's record; one that cannot be written now is kept and retried."""
        self._save(job)

    def _save(self, job: Job) -> bool:
        try:
            self._write(job)
        except sqlite3.Error as exc:
            self._unsaved[job.id] = job
            if is_damage(exc):
                self._start_afresh(str(exc))
            elif not self._failing:
                self._failing = True
                log.warning(
                    "cannot write job %s's record to %s (%s); keeping it in memory and "
                    "retrying (jobs go on running)",
                    job.id,
                    self.path,
                    exc,
                )
            return False
        self._unsaved.pop(job.id, None)
        if self._failing and not self._unsaved:
            self._failing = False
            log.warning("job records are written to %s again", self.path)
        return True

    def _write(self, job: Job) -> None:
        finished = job.state.finished
        events = [[e.id, e.type.value, e.data] for e in job.log.events] if finished else None
        row = (
            job.id,
            job.state.value,
            job.request.model,
            job.created_at,
            job.started_at,
            job.first_token_at,
            job.finished_at,
            job.worker,
            job.tokens,
            len(job.log),
            json.dumps(job.result) if job.result else None,
            json.dumps(job.request.to_json()),
            job.text,
            json.dumps(job.runs) if job.runs else None,
        )
        if events is None:
            self._db.execute(_SAVE, row)
            return
        # Both or neither: a finished job's record is never without its events.
        self._db.execute("BEGIN")
        try:
            self._db.execute(_SAVE, row)
            self._db.execute(
                "INSERT OR REPLACE INTO job_events VALUES (?, ?)", (job.id, json.dumps(events))
            )
            self._db.execute("DELETE FROM live_events WHERE job = ?", (job.id,))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def follow(self, job: Job) -> None:
        """Write each of the running ``job``'s events down as it is appended, before a
        client can see it (``live_events``). One that cannot be written leaves a gap: the
        job then cannot go on after a restart, and fails as before."""

        def write(event: Event) -> None:
            if event.type.terminal:
                return  # the finished record holds it, written at once
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO live_events VALUES (?, ?, ?, ?)",
                    (job.id, event.id, event.type.value, event.wire or json.dumps(event.data)),
                )
            except sqlite3.Error as exc:
                if not self._failing:
                    log.warning("cannot write job %s's event %d: %s", job.id, event.id, exc)

        job.log.on_append = write

    def retry(self) -> int:
        """Write the records whose write failed; how many are still waiting."""
        for job in list(self._unsaved.values()):
            if not self._save(job):
                break  # still failing: the rest wait for the next retry
        return len(self._unsaved)

    def states(self) -> dict[str, int]:
        """How many records are in each state (an index's count, not a table scan)."""
        return dict(self._read("SELECT state, count(*) FROM jobs GROUP BY state"))

    def _read(self, query: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """The rows of ``query``; none from a file found damaged (it is moved aside)."""
        try:
            return self._db.execute(query, args).fetchall()
        except sqlite3.Error as exc:
            if not is_damage(exc):
                raise InternalError(f"cannot read the job records in {self.path}: {exc}") from exc
            self._start_afresh(str(exc))
            return self._db.execute(query, args).fetchall()  # the fresh file's: none

    def _start_afresh(self, why: str) -> None:
        """The file turned out damaged while the queen ran: move it aside, start a new one."""
        moved = move_aside(self.path)  # before closing, which deletes the -wal and -shm
        self._db.close()
        log.warning(
            "queen-rbee: %s is damaged (%s); moved it to %s and started a fresh one "
            "(the job records in it are not in the new one)",
            self.path,
            why,
            moved,
        )
        self.damaged = moved
        self._db, _ = open_sqlite(self.path, _setup, program="queen-rbee", lost="")
        self.count = len(self._unsaved)

    @hookimpl
    def rbee_job_submitted(self, job: Job) -> None:
        self.count += 1
        self.save(job)

    @hookimpl
    def rbee_job_finished(self, job: Job) -> None:
        self.save(job)

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The whole job (its event log too), or None if no record has this id."""
        if job_id in self._unsaved:
            return self._unsaved[job_id]
        if len(job_id) > 200 or not job_id.isascii():  # no job id looks like this
            return None
        rows = self._read(
            f"SELECT {_COLUMNS}, job_events.log FROM jobs "
            "LEFT JOIN job_events USING (id) WHERE jobs.id = ?",
            (job_id,),
        )
        return self._revive(*rows[0]) if rows else None

    def page(
        self,
        limit: int = DEFAULT_PAGE,
        before: str | None = None,
        state: str | None = None,
        model: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Records newest first (as ``Job.summary`` has them), at most ``limit``, older than
        the cursor ``before``; and the cursor of the next page (None at the end)."""
        where: list[str] = []
        args: list[Any] = []
        if state is not None:
            where.append("state = ?")
            args.append(state)
        if model is not None:
            where.append("model = ?")
            args.append(model)
        if before is not None:
            where.append("(created_at, id) < (?, ?)")
            args.extend(decode_cursor(before))
        query = f"SELECT {_COLUMNS} FROM jobs"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY created_at DESC, id DESC LIMIT ?"
        rows = self._read(query, (*args, limit + 1))
        more = len(rows) > limit
        records = [_summary(*row) for row in rows[:limit]]
        last = records[-1] if records else None
        cursor = encode_cursor(last["created_at"], last["job_id"]) if more and last else None
        return records, cursor

    # -- start-up and retention -----------------------------------------------------------

    def unfinished(self) -> list[Job]:
        """At start-up: purge expired records, and read back the jobs the last queen left
        queued or running, each with the events its clients may have seen (its text and
        token count from them). One whose events have a gap is failed with
        ``queen_restarted``, as is every one of a store written before events were kept."""
        self.prune()
        rows = self._read(
            f"SELECT {_COLUMNS}, NULL FROM jobs WHERE state IN (?, ?) ORDER BY created_at",
            (JobState.QUEUED.value, JobState.RUNNING.value),
        )
        jobs = []
        for row in rows:
            job = self._revive(*row)
            events = self._read(
                "SELECT id, type, data FROM live_events WHERE job = ? ORDER BY id", (job.id,)
            )
            if [id_ for id_, _, _ in events] != list(range(1, len(events) + 1)):
                self.fail(job, RESTARTED.format(state=job.state.value))
                continue
            state, first_token_at = job.state, job.first_token_at
            job.text, job.tokens = "", 0
            for _, kind, data in events:
                job.emit(EventType(kind), json.loads(data), data)
            job.state, job.first_token_at = state, first_token_at
            jobs.append(job)
        return jobs

    def fail(self, job: Job, message: str, code: str = "queen_restarted") -> None:
        """End a job the last queen left unfinished with an error, and write it."""
        job.emit(EventType.ERROR, {"code": code, "message": message})
        self.save(job)

    def prune(self, batch: int = PRUNE_BATCH) -> int:
        """Forget up to ``batch`` finished jobs older than the retention period (the oldest
        first); how many went. Call again while it returns ``batch``."""
        cutoff = time.time() - self.retention
        doomed = "SELECT id FROM jobs WHERE finished_at < ? ORDER BY finished_at LIMIT ?"
        try:
            self._db.execute("BEGIN")
            self._db.execute(f"DELETE FROM job_events WHERE id IN ({doomed})", (cutoff, batch))
            gone = self._db.execute(f"DELETE FROM jobs WHERE id IN ({doomed})", (cutoff, batch))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            log.warning("cannot purge expired job records from %s: %s", self.path, exc)
            return 0
        self.count -= gone.rowcount
        return gone.rowcount

    def close(self) -> None:
        self.retry()
        if self._unsaved:
            log.warning(
                "%d job record(s) could not be written to %s before the queen stopped",
                len(self._unsaved),
                self.path,
            )
        self._db.close()

    def _revive(self, *row: Any) -> Job:
        (id_, state, _model, created_at, started_at, first_token_at, finished_at, worker) = row[:8]
        tokens, _count, result, request, text, runs, events = row[8:]
        log_ = EventLog()
        for _, kind, data in json.loads(events) if events else []:
            log_.append(EventType(kind), data)
        job = Job(request=JobRequest.from_json(json.loads(request)), id=id_, log=log_)
        job.created_at, job.started_at, job.first_token_at = created_at, started_at, first_token_at
        job.finished_at, job.worker, job.text, job.tokens = finished_at, worker, text, tokens
        job.result = json.loads(result) if result else {}
        job.runs = json.loads(runs) if runs else []
        job.state = JobState(state)
        return job


def _summary(*row: Any) -> dict[str, Any]:
    """A row as ``Job.summary`` has it, without building the job or its event log."""
    (id_, state, model, created_at, started_at, first_token_at, finished_at, worker) = row[:8]
    tokens, events, result, request, text, runs = row[8:]
    return {
        "job_id": id_,
        "state": state,
        "model": model,
        "worker": worker,
        "created_at": created_at,
        "started_at": started_at,
        "first_token_at": first_token_at,
        "finished_at": finished_at,
        "events": events,
        "tokens": tokens,
        "text": text,
        "result": json.loads(result) if result else None,
        "request": json.loads(request),
        "runs": json.loads(runs) if runs else [],
    }
