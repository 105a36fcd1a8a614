"""What the scheduler chooses between: places a job could run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Candidate"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A place for a job: an existing worker (``worker_id`` set) or a device to spawn one on.

    ``busy`` counts the jobs the worker is running or has queued, ``slots`` how many it
    runs at once: a worker with ``busy < slots`` takes the job at once, one without makes it
    wait. ``prefix_tokens`` is how many of the job's ``prompt_tokens`` (both estimates the
    queen makes before tokenizing) the worker likely still holds in its cache from jobs it
    served. ``starting`` marks a worker still loading. ``free_memory`` is in bytes, ``None``
    where unknown. ``backend`` is the worker's inference backend, or for a device the one the
    job asked for (``None``: the hive picks by the model's format).
    """

    hive: str
    device: str
    worker_id: str | None = None
    model: str | None = None
    busy: int = 0
    free_memory: int | None = None
    backend: str | None = None
    slots: int = 1
    prefix_tokens: int = 0
    prompt_tokens: int = 0
    starting: bool = False

    @property
    def has_room(self) -> bool:
        """A loaded worker with a free slot: the job would start without waiting."""
        return self.worker_id is not None and not self.starting and self.busy < self.slots
