"""What the scheduler chooses between: places a job could run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Candidate"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A place for a job: an existing worker (``worker_id`` set) or a device to spawn one on.

    ``busy`` counts the jobs the worker is running or has queued. ``free_memory`` is in bytes,
    ``None`` where unknown. ``backend`` is the worker's inference backend, or for a device
    the one the job asked for (``None``: the hive picks by the model's format).
    """

    hive: str
    device: str
    worker_id: str | None = None
    model: str | None = None
    busy: int = 0
    free_memory: int | None = None
    backend: str | None = None
