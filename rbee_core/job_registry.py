"""The queen's jobs in memory: every live one, and a few recently finished.

A finished job's record is on disk (the queen's job store); holding every one in memory
would make the queen grow with its history (about 15 KB a job), so a finished job leaves
for a small cache of recent ones, and any other is found through ``load``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from rbee_core.errors import UnknownJob
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job

__all__ = ["RECENT", "JobRegistry"]

RECENT = 256
"""Finished jobs kept in memory: the ones clients still ask about, right after they end."""


class JobRegistry:
    """Jobs by id: the live ones in submission order, then the recent finished ones."""

    def __init__(
        self, load: Callable[[str], Job | None] | None = None, recent: int = RECENT
    ) -> None:
        self._live: dict[str, Job] = {}
        self._recent: OrderedDict[str, Job] = OrderedDict()
        self._load = load
        self._keep = recent

    def __len__(self) -> int:
        """Jobs in memory (live and recent), not every job on record."""
        return len(self._live) + len(self._recent)

    def __iter__(self) -> Iterator[Job]:
        """The jobs in memory: live ones in submission order, then recently finished ones."""
        return iter([*self._live.values(), *self._recent.values()])

    @property
    def live(self) -> list[Job]:
        """Jobs not finished yet, in submission order."""
        return list(self._live.values())

    def add(self, job: Job) -> None:
        """Take in a job made elsewhere (a record read back): live or recent by its state."""
        if job.state.finished:
            self._remember(job)
        else:
            self._live[job.id] = job

    def create(self, request: JobRequest) -> Job:
        job = Job(request=request)
        self._live[job.id] = job
        return job

    def finished(self, job: Job) -> None:
        """The job ended (and its record was written): it leaves the live jobs."""
        self._live.pop(job.id, None)
        self._remember(job)

    def _remember(self, job: Job) -> None:
        self._recent[job.id] = job
        self._recent.move_to_end(job.id)
        while len(self._recent) > self._keep:
            self._recent.popitem(last=False)

    def in_memory(self, job_id: str) -> Job | None:
        """The job if it is live or recent, without reading any record."""
        return self._live.get(job_id) or self._recent.get(job_id)

    def get(self, job_id: str) -> Job:
        """The job (read back through ``load`` if it is not in memory), or ``UnknownJob``."""
        job = self._live.get(job_id)
        if job is not None:
            return job
        job = self._recent.get(job_id)
        if job is not None:
            self._recent.move_to_end(job_id)
            return job
        job = self._load(job_id) if self._load is not None else None
        if job is None:
            raise UnknownJob(job_id)
        self._remember(job)  # never live: a live job is in memory from its submission
        return job
