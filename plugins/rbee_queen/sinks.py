"""Narration sinks of the queen process: the job's own stream, and the queen's log."""

from __future__ import annotations

import logging

from rbee_core import hookimpl
from rbee_core.events import EventType
from rbee_core.job_registry import JobRegistry
from rbee_core.narration import Narration

__all__ = ["JobStreamSink"]

log = logging.getLogger("rbee.narration")


class JobStreamSink:
    """Appends narration about a job to that job's event log, so its stream shows it."""

    def __init__(self, jobs: JobRegistry) -> None:
        self.jobs = jobs

    @hookimpl
    def rbee_narrate(self, narration: Narration) -> None:
        log.info(
            "[%s] %s%s",
            narration.actor,
            narration.message,
            f" ({narration.job_id})" if narration.job_id else "",
        )
        if narration.job_id is None:
            return
        job = self.jobs.get(narration.job_id)
        if not job.log.closed:
            job.emit(EventType.NARRATION, narration.to_json())
