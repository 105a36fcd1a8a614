"""Placing a job: which hives may take it, which workers and devices there could run it
(the candidates the ``rbee_schedule`` hook chooses from), and a worker for the choice:
one already loaded, or a new one the hive starts."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable

import pluggy

from rbee_core.errors import NoPlacement
from rbee_core.jobs import Job, JobState
from rbee_core.narration import Narration
from rbee_core.scheduling import Candidate
from rbee_queen.fleet import LOCAL_HIVE, Fleet, WorkerRef
from rbee_queen.hives import HiveRecord
from rbee_queen.relay import WorkerGone

__all__ = ["Placement"]

Say = Callable[[Job, str, str], None]
"""Narration into a job's stream: (job, action, message)."""

# A job whose worker went away before the job reached it (unloaded to make room for another
# model) is placed again, this many times at most.
MAX_PLACEMENTS = 4


class Placement:
    def __init__(self, fleet: Fleet, pm: pluggy.PluginManager, say: Say) -> None:
        self.fleet = fleet
        self.pm = pm
        self.say = say

    async def hives_for(self, job: Job) -> list[HiveRecord]:
        """The hives that may take ``job``: the one it is pinned to, else every ready one;
        this machine's (started if need be) when none is ready."""
        pinned = job.request.hive
        hives = self.fleet.hives
        if pinned is not None and pinned != LOCAL_HIVE:
            record = hives.get(pinned)
            if not record.ready:
                raise NoPlacement(f"hive {pinned} is {record.state}; it takes no new jobs")
            return [record]
        if pinned == LOCAL_HIVE or not hives.ready():
            return [await self.fleet.local_hive(lambda a, m: self.say(job, a, m))]
        return hives.ready()

    def candidates(self, job: Job, name: str, hives: list[HiveRecord]) -> list[Candidate]:
        """Every loaded worker of model ``name`` and every device that could start one, on
        ``hives``, within what the job pins (device, backend)."""
        found: list[Candidate] = []
        backend = job.request.backend
        for record in hives:
            found += [
                Candidate(
                    record.name,
                    w.device,
                    worker_id=w.id,
                    model=w.model,
                    busy=w.queue.load,
                    backend=w.backend,
                )
                for w in self.fleet.workers.values()
                if w.hive == record.name
                and w.model == name
                and job.request.device in (None, w.device)
                and backend in (None, w.backend)
            ]
            if backend is not None and backend not in record.backends:
                continue  # this hive cannot start a worker of that backend
            found += [
                Candidate(record.name, d.id, free_memory=d.free_memory, backend=backend)
                for d in record.devices
                if job.request.device in (None, d.id)
            ]
        return found

    async def run(
        self, job: Job, name: str, relay: Callable[[Job, WorkerRef], Awaitable[None]]
    ) -> None:
        """Place ``job`` and ``relay`` it to its worker; placed again when the worker went
        away before the job reached it (``WorkerGone``): an accepted job is never lost to
        an eviction."""
        for attempt in range(1, MAX_PLACEMENTS + 1):
            worker = await self.place(job, name)
            try:
                await relay(job, worker)
                return
            except WorkerGone as gone:
                if attempt == MAX_PLACEMENTS:
                    raise
                job.state, job.worker, job.started_at = JobState.QUEUED, None, None
                self.say(job, "replace", f"{gone.message}; placing the job again")

    async def place(self, job: Job, name: str) -> WorkerRef:
        """A worker for ``job`` (of model ``name``, the catalog's name for it)."""
        hives = await self.hives_for(job)
        chosen = self.pm.hook.rbee_schedule(job=job, candidates=self.candidates(job, name, hives))
        if chosen is None:
            raise NoPlacement(f"no hive can run model {name}: {why_not(job, hives)}")
        workers = self.fleet.workers
        if chosen.worker_id is not None and chosen.worker_id in workers:
            worker = workers[chosen.worker_id]
            self.say(job, "worker_reuse", f"the worker {worker.id} already has {name} loaded")
            return worker
        where = self.fleet.hives.get(chosen.hive).describe()
        self.say(
            job,
            "schedule",
            f"picked {chosen.device} on {where} for our inference "
            "job (other placement policies: docs/scheduling.md)",
        )
        self.say(job, "worker_wait", "we're now waiting for the worker bee to wake up")
        worker = await self.fleet.spawn_worker(
            self.fleet.hives.get(chosen.hive),
            job.request.model,
            chosen.device,
            self._narration_of(job),
            job.request.keep_alive,
            job.request.backend,
            room_wait=room_wait(job),
        )
        self.say(job, "worker_ready", f"the worker bee is awake: {worker.describe()}")
        return worker

    def _narration_of(self, job: Job) -> Callable[[Narration], None]:
        """The worker start's narration, into the job's stream."""

        def relay(narration: Narration) -> None:
            self.pm.hook.rbee_narrate(narration=dataclasses.replace(narration, job_id=job.id))

        return relay


def why_not(job: Job, hives: list[HiveRecord]) -> str:
    """Why no hive offered a place for ``job``, hive by hive."""
    request = job.request
    reasons = []
    for r in hives:
        if request.backend is not None and request.backend not in r.backends:
            have = ", ".join(sorted(r.backends)) or "none"
            reasons.append(f"{r.name}: no backend {request.backend!r} (it has {have})")
        elif request.device:
            have = ", ".join(d.id for d in r.devices)
            reasons.append(f"{r.name}: no device {request.device!r} (it has {have})")
        else:
            reasons.append(f"{r.name}: no free worker or device")
    return "; ".join(reasons)


def room_wait(job: Job) -> float | None:
    """How long the hive may wait for room for ``job``'s worker (busy workers to finish):
    what is left of the job's ``timeout``; None, the hive's start timeout, without one."""
    if job.request.timeout is None:
        return None
    return max(0.0, job.request.timeout - (time.time() - job.created_at))
