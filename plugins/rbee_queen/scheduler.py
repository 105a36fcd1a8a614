"""The default placement policy. ``trylast``, so any plugin's ``rbee_schedule`` wins.

Prefix with bounded load: among the model's loaded workers with a free slot, the one that
holds the longest cached prefix of the job's prompt, unless it is busier than the least
busy one by more than ``LOAD_MARGIN`` jobs (or a quarter of its slots, if more): then the
least busy, so that one hot prefix never piles every job on one worker. With no room
anywhere, a device offered for a new worker (placement offers one only when a replica may
start); else the least busy full worker, which the job waits for (it is not bound to it:
placement asks again when a slot frees). No worker at all: a device, the GPU with the most
free memory first. See docs/scheduling.md for how to write another.
"""

from __future__ import annotations

from rbee_core import hookimpl
from rbee_core.jobs import Job
from rbee_core.scheduling import Candidate

__all__ = ["LOAD_MARGIN", "load_margin", "rbee_schedule"]

LOAD_MARGIN = 2  # jobs a prefix's worker may run beyond the least busy one


def load_margin(slots: int) -> int:
    """How many more jobs than the least busy worker a worker holding the job's prefix may
    run and still get it: ``LOAD_MARGIN``, or a quarter of its slots when that is more."""
    return max(LOAD_MARGIN, slots // 4)


@hookimpl(trylast=True)
def rbee_schedule(job: Job, candidates: list[Candidate]) -> Candidate | None:
    """Bounded-load prefix placement (module docstring)."""
    model = job.request.model
    workers = [c for c in candidates if c.worker_id is not None and c.model == model]
    workers = [c for c in workers if not c.starting]
    devices = [c for c in candidates if c.worker_id is None and not c.starting]
    with_room = [c for c in workers if c.has_room]
    if with_room:
        least = min(with_room, key=lambda c: c.busy)
        best = max(with_room, key=lambda c: c.prefix_tokens)
        if best.prefix_tokens > least.prefix_tokens and (
            best.busy <= least.busy + load_margin(best.slots)
        ):
            return best
        return least
    if devices:
        return _device(devices, {c.hive for c in workers})
    if workers:
        return min(workers, key=lambda c: c.busy - c.slots)
    # Only workers still starting: wait for one of them.
    return next((c for c in candidates if c.starting), None)


def _device(devices: list[Candidate], running: set[str]) -> Candidate:
    """A hive that does not run the model yet; there a GPU, the one with the most free
    memory; else a CPU."""
    return min(
        devices,
        key=lambda c: (
            c.hive in running,
            not c.device.startswith("cuda"),
            -(c.free_memory if c.free_memory is not None else -1),
        ),
    )
