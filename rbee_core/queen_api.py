"""What a queen plugin may use of the queen: the ``QueenApi`` protocol.

The queen's service object implements it; ``rbee_queen_started`` receives it, and a route
handler gets it by declaring a parameter ``queen`` (``rbee_queen.dependencies.QueenApiDep``).
Everything else on that object is the queen's own and may change without notice: a plugin
that needs more asks for a member here rather than reaching into the queen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rbee_core.job_registry import JobRegistry
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job
from rbee_core.messages import HiveState
from rbee_core.models import ModelCatalog
from rbee_core.narration import Narration

__all__ = ["QueenApi", "WorkerLoad"]


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """What the queen has placed on one worker: jobs in its slots, and jobs waiting."""

    running: int
    waiting: int


class QueenApi(Protocol):
    """The queen, as its plugins see it: jobs in, events out, and what the cluster holds."""

    @property
    def catalog(self) -> ModelCatalog:
        """The model sources' catalog: ``known()`` aliases, ``resolve(name)`` (an unknown
        or malformed reference raises the ``RbeeError`` a client should get)."""
        ...

    @property
    def jobs(self) -> JobRegistry:
        """The jobs in memory: iterate for all of them, ``live`` for the unfinished,
        ``get(id)`` for one (from the records if it left memory)."""
        ...

    def submit(self, request: JobRequest) -> Job:
        """Accept a job and start running it; raises the ``RbeeError`` a client should get
        when it cannot be accepted (unknown model or hive, full queue, bad schema). Follow
        its events with ``job.log.follow()``."""
        ...

    def request_cancel(self, job_id: str) -> asyncio.Task[None] | None:
        """Start cancelling a job (a client went away, say); the task running it, if any.
        Its stream ends with an ``end`` event of outcome ``cancelled``."""
        ...

    def listening(self, job: Job) -> Callable[[], None]:
        """Say a client follows ``job``'s stream; call what it returns when it leaves. A job
        nobody listens to for the queen's orphan timeout is cancelled."""
        ...

    def model_name(self, model: str) -> str:
        """The catalog's name for what a user typed, after checking it resolves."""
        ...

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a plugin's background task for as long as the queen runs; it is cancelled
        when the queen stops, and a failure is logged."""
        ...

    def announce(self, narration: Narration) -> None:
        """Send a narration to every narration sink (the job's stream if it has a job id)."""
        ...

    def job_records(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` job records, newest first, as ``GET /jobs`` lists them."""
        ...

    def job_state_counts(self) -> dict[str, int]:
        """How many job records are in each state (finished ones included)."""
        ...

    def hive_listing(self) -> list[dict[str, Any]]:
        """Every hive as ``GET /hives`` shows it, with its workers."""
        ...

    def hive_states(self) -> list[HiveState]:
        """The state of every hive the queen knows."""
        ...

    def worker_loads(self) -> dict[str, WorkerLoad]:
        """Every worker the queen places jobs on, by id, with what it holds now."""
        ...
