"""The queen's in-memory table of jobs."""

from __future__ import annotations

from collections.abc import Iterator

from rbee_core.errors import UnknownJob
from rbee_core.jobs import Job, JobRequest

__all__ = ["JobRegistry"]


class JobRegistry:
    """Jobs by id, in submission order."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._jobs.values()))

    def add(self, job: Job) -> None:
        """Take back a job from an earlier queen (its record, already finished)."""
        self._jobs[job.id] = job

    def create(self, request: JobRequest) -> Job:
        job = Job(request=request)
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        """The job, or ``UnknownJob``."""
        try:
            return self._jobs[job_id]
        except KeyError:
            raise UnknownJob(job_id) from None
