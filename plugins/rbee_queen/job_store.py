"""Job records that survive the queen: SQLite in the state dir.

A record is written when a job is accepted, when it starts running and when it finishes
(with its whole event log, so its stream can be replayed after a restart) — never per
token. At start-up the queen loads the records still within the retention period; a job the
last queen left queued or running is marked failed with the reason, never left "running".
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from rbee_core import hookimpl
from rbee_core.event_log import EventLog
from rbee_core.events import EventType
from rbee_core.jobs import Job, JobRequest, JobState

__all__ = ["JobStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    first_token_at REAL,
    finished_at REAL,
    worker TEXT,
    text TEXT NOT NULL DEFAULT '',
    tokens INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    events TEXT
)
"""
RESTARTED = "the queen stopped while the job was {state}; it did not finish"


class JobStore:
    def __init__(self, path: Path, retention: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.retention = retention
        # Used from the event loop's thread only; created before the loop starts.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # No fsync per commit (WAL syncs at checkpoints): a saved job survives the queen
        # crashing, and a save costs microseconds, not a disk flush, on every job's way to
        # its first token.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def save(self, job: Job) -> None:
        finished = job.state.finished
        events = [[e.id, e.type.value, e.data] for e in job.log.events] if finished else None
        self._db.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.id,
                json.dumps(job.request.to_json()),
                job.state.value,
                job.created_at,
                job.started_at,
                job.first_token_at,
                job.finished_at,
                job.worker,
                job.text,
                job.tokens,
                json.dumps(job.result) if job.result else None,
                json.dumps(events) if events is not None else None,
            ),
        )

    @hookimpl
    def rbee_job_submitted(self, job: Job) -> None:
        self.save(job)

    @hookimpl
    def rbee_job_finished(self, job: Job) -> None:
        self.save(job)

    def prune(self) -> int:
        """Forget finished jobs older than the retention period; how many went."""
        cutoff = time.time() - self.retention
        cursor = self._db.execute(
            "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?", (cutoff,)
        )
        return cursor.rowcount

    def load(self) -> list[Job]:
        """The retained jobs, oldest first; unfinished ones are failed and saved as such."""
        self.prune()
        jobs = []
        for row in self._db.execute("SELECT * FROM jobs ORDER BY created_at").fetchall():
            job = self._revive(*row)
            jobs.append(job)
        return jobs

    def _revive(
        self,
        id_: str,
        request: str,
        state: str,
        created_at: float,
        started_at: float | None,
        first_token_at: float | None,
        finished_at: float | None,
        worker: str | None,
        text: str,
        tokens: int,
        result: str | None,
        events: str | None,
    ) -> Job:
        log = EventLog()
        for _, kind, data in json.loads(events) if events else []:
            log.append(EventType(kind), data)
        job = Job(request=JobRequest.from_json(json.loads(request)), id=id_, log=log)
        job.created_at, job.started_at, job.first_token_at = created_at, started_at, first_token_at
        job.finished_at, job.worker, job.text, job.tokens = finished_at, worker, text, tokens
        job.result = json.loads(result) if result else {}
        job.state = JobState(state)
        if not job.state.finished:  # the last queen died with it in flight
            reason: dict[str, Any] = {
                "code": "queen_restarted",
                "message": RESTARTED.format(state=state),
            }
            job.emit(EventType.ERROR, reason)
            self.save(job)
        return job

    def close(self) -> None:
        self._db.close()
