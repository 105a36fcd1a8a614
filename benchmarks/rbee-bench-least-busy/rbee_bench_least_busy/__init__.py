"""Least-busy placement, blind to cached prefixes: the baseline the prefix-aware default is
measured against (benchmarks/bench_cluster.py). Among a model's loaded workers with a free
slot, the least busy; ties at random, as a load balancer without affinity spreads them.
Anything else (no room, no worker yet) is left to the default policy: it returns ``None``."""

from __future__ import annotations

import random

from rbee_core import hookimpl
from rbee_core.jobs import Job
from rbee_core.scheduling import Candidate

__all__ = ["rbee_schedule"]


@hookimpl
def rbee_schedule(job: Job, candidates: list[Candidate]) -> Candidate | None:
    with_room = [
        c
        for c in candidates
        if c.worker_id is not None and c.model == job.request.model and c.has_room
    ]
    if not with_room:
        return None
    least = min(c.busy for c in with_room)
    return random.choice([c for c in with_room if c.busy == least])
