"""The default placement policy. ``trylast``, so any plugin's ``rbee_schedule`` wins.

See docs/scheduling.md for how to write another.
"""

from __future__ import annotations

from rbee_core import hookimpl
from rbee_core.jobs import Job
from rbee_core.scheduling import Candidate

__all__ = ["rbee_schedule"]


@hookimpl(trylast=True)
def rbee_schedule(job: Job, candidates: list[Candidate]) -> Candidate | None:
    """A worker that has the model (least busy first); else the GPU with the most free
    memory; else the CPU."""
    loaded = [c for c in candidates if c.worker_id and c.model == job.request.model]
    if loaded:
        return min(loaded, key=lambda c: c.busy)
    devices = [c for c in candidates if c.worker_id is None]
    gpus = [c for c in devices if c.device.startswith("cuda")]
    if gpus:
        return max(gpus, key=lambda c: c.free_memory or 0)
    return devices[0] if devices else None
