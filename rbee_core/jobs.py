"""The job the queen runs (``Job``): its request, state, and the ordered log of its events.

What a client asks for, the job contract (``JobRequest``), is declared in
``rbee_core.job_request`` and imported from there, by this module too (``Job.request``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rbee_core.event_log import EventLog
from rbee_core.events import Event, EventType
from rbee_core.job_request import JobRequest

__all__ = ["Job", "JobState", "new_job_id"]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


def new_job_id() -> str:
    return f"job-{uuid.uuid4()}"


_OUTCOMES = (JobState.COMPLETED.value, JobState.CANCELLED.value)


@dataclass
class Job:
    """A job the queen accepted: its request, state, and the ordered log of its events."""

    request: JobRequest
    id: str = field(default_factory=new_job_id)
    state: JobState = JobState.QUEUED
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None
    tokens: int = 0  # token events so far
    cancel_requested: bool = False
    worker: str | None = None
    text: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    log: EventLog = field(default_factory=EventLog)
    # Each time the job was sent to a worker: which, on which hive, its engine (backend,
    # quantization, device type), how many tokens the job had then, and, for a run that
    # was lost, why. With the request (and its seed) it is what runs the job again.
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sse_url(self) -> str:
        return f"/jobs/{self.id}/stream"

    def emit(self, type_: EventType, data: dict[str, Any], wire: str | None = None) -> Event:
        """Append an event to the job's log, keeping state and result text in step.
        ``wire``: ``data`` as JSON, when it came that way (see ``Event.wire``)."""
        if type_ is EventType.END and data.get("outcome", "completed") not in _OUTCOMES:
            raise ValueError(f"an end event's outcome must be one of {_OUTCOMES}: {data!r}")
        event = self.log.append(type_, data, wire)
        if type_ is EventType.TOKEN:
            self.text += data.get("text", "")
            self.tokens += 1
            if self.first_token_at is None:
                self.first_token_at = time.time()
        elif type_ is EventType.END:
            self.result = dict(data)
            self._finish(JobState(data.get("outcome", JobState.COMPLETED)))
        elif type_ is EventType.ERROR:
            self.result = dict(data)
            self._finish(JobState.FAILED)
        return event

    def requeue(self) -> None:
        """Back to waiting for a worker: its worker went away, or the queen restarted."""
        self.state, self.worker, self.started_at = JobState.QUEUED, None, None

    def mark_running(self, worker: str) -> None:
        self.state = JobState.RUNNING
        self.worker = worker
        self.started_at = time.time()

    def _finish(self, state: JobState) -> None:
        self.state = state
        self.finished_at = time.time()

    def summary(self) -> dict[str, Any]:
        """The job's record as ``GET /jobs/{job_id}`` returns it."""
        return {
            "job_id": self.id,
            "state": self.state.value,
            "model": self.request.model,
            "worker": self.worker,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "first_token_at": self.first_token_at,
            "finished_at": self.finished_at,
            "events": len(self.log),
            "tokens": self.tokens,
            "text": self.text,
            "result": self.result or None,
            "request": self.request.to_json(),
            "runs": self.runs,
        }
