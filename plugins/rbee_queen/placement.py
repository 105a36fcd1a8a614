"""Placing a job: which hives may take it, which workers and devices there could run it
(the candidates the ``rbee_schedule`` hook chooses from), and a worker for the choice:
one already loaded with a free slot, the model's first one, which the hive starts, or a
replica of a busy model (replicas.py); jobs wait their turn in their model's line
(waiting.py).

A job whose worker is lost mid-answer (its process, its hive, or a drain) is placed again,
on any hive but one that is gone or draining, and goes on where it was (relay.py): at most
``max_retries`` times for losses; a drain is a planned move and is not counted."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pluggy

from rbee_core.errors import (
    DeviceTooSmall,
    HiveDraining,
    HiveUnreachable,
    NoPlacement,
    RbeeError,
    WorkerLost,
)
from rbee_core.jobs import Job
from rbee_core.narration import Narration
from rbee_core.prefix_index import Block, prompt_blocks
from rbee_core.scheduling import Candidate
from rbee_queen.fleet import LOCAL_HIVE, Fleet, WorkerRef
from rbee_queen.hives import HiveRecord
from rbee_queen.relay import WorkerGone
from rbee_queen.replicas import DEFAULT_MAX_REPLICAS, Replicas
from rbee_queen.splits import Splitter, parts_of
from rbee_queen.waiting import Place, Waiting

__all__ = ["Placement"]

Say = Callable[[Job, str, str], None]
"""Narration into a job's stream: (job, action, message)."""

# A job whose worker went away before the job reached it (unloaded to make room for another
# model) is placed again, this many times at most.
MAX_PLACEMENTS = 4
# A job whose worker was lost mid-answer moves to another this many times at most.
DEFAULT_MAX_RETRIES = 2


class Placement:
    """Places each job from its model's line (waiting.py): only the head of a line asks
    the policy, and takes a slot of the worker chosen for it only when that worker has
    room; else it waits for a slot to free or a worker to start, and asks again."""

    def __init__(
        self,
        fleet: Fleet,
        pm: pluggy.PluginManager,
        say: Say,
        keep: Callable[[asyncio.Task[Any]], None] | None = None,
        max_replicas: int = DEFAULT_MAX_REPLICAS,
        replicas: dict[str, tuple[int, int]] | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        self.fleet = fleet
        self.max_retries = max_retries
        self._attempts: dict[str, asyncio.Task[None]] = {}  # job id -> its run on a worker
        self._interrupts: dict[str, RbeeError] = {}  # job id -> why its run was stopped
        self.pm = pm
        self.say = say
        self.splitter = Splitter(fleet, say)
        self.waiting = Waiting(say)
        self.replicas = Replicas(
            fleet,
            say,
            self._narration_of,
            self.waiting.poke,
            keep or _hold,
            max_replicas,
            replicas,
        )

    async def hives_for(self, job: Job, avoid: frozenset[str] = frozenset()) -> list[HiveRecord]:
        """The hives that may take ``job``: the one it is pinned to, else every ready one
        but those in ``avoid`` (where the job was lost); this machine's (started if need
        be) when none is left."""
        pinned = job.request.hive
        hives = self.fleet.hives
        if job.request.split:  # its worker runs on the first
            return self.splitter.hives(job, avoid)[:1]
        ready = [r for r in hives.ready() if r.name not in avoid]
        if pinned is not None and pinned != LOCAL_HIVE:
            record = hives.get(pinned)
            if not record.ready:
                raise NoPlacement(f"hive {pinned} is {record.state}; it takes no new jobs")
            return [record]
        if pinned == LOCAL_HIVE or not ready:
            return [await self.fleet.local_hive(lambda a, m: self.say(job, a, m))]
        return ready

    def candidates(
        self,
        job: Job,
        name: str,
        hives: list[HiveRecord],
        blocks: list[Block] | None = None,
    ) -> list[Candidate]:
        """Every loaded or starting worker of model ``name`` on ``hives`` (within what the
        job pins: device, backend), with its load, slots and how much of the job's prompt
        it likely holds cached; and devices where a new worker could start, only when none
        of the model exists or a replica may start (``scale_out``), hives that do not run
        the model first, then the most free memory."""
        request = job.request
        backend = request.backend
        index = self.fleet.index
        if blocks is None:
            blocks = prompt_blocks(request.prompt, request.turns)
        prompt_tokens = index.estimate(blocks)
        names = {record.name for record in hives}
        mine = [
            w
            for w in self.fleet.workers.values()
            if w.model == name
            and w.hive in names
            and request.device in (None, w.device)
            and backend in (None, w.backend)
            and (not request.split or parts_of(w) == request.split[1:])
        ]
        starting = [
            s
            for s in self.replicas.starting.get(name, ())
            if s.hive in names
            and request.device in (None, s.device)
            and backend in (None, s.backend)
        ]
        found: list[Candidate] = []
        for record in hives:
            found += [
                Candidate(
                    record.name,
                    w.device,
                    worker_id=w.id,
                    # The job's own spelling of the model: the same catalog entry.
                    model=request.model,
                    busy=w.queue.running,
                    backend=w.backend,
                    slots=w.queue.capacity,
                    prefix_tokens=index.match(w.id, blocks),
                    prompt_tokens=prompt_tokens,
                )
                for w in mine
                if w.hive == record.name
            ]
            found += [
                Candidate(
                    record.name,
                    s.device,
                    model=request.model,
                    backend=s.backend,
                    prompt_tokens=prompt_tokens,
                    starting=True,
                )
                for s in starting
                if s.hive == record.name
            ]
        first = not mine and not starting
        if not (first or self.scale_out(name, mine)):
            return found
        taken = {(w.hive, w.device) for w in mine}
        running = {w.hive for w in mine}
        devices = [
            Candidate(
                record.name,
                d.id,
                free_memory=d.free_memory,
                backend=backend,
                prompt_tokens=prompt_tokens,
            )
            for record in hives
            if backend is None or backend in record.backends
            for d in record.devices
            if request.device in (None, d.id)
            # A second worker on a device that runs one shares its compute: no gain.
            and (record.name, d.id) not in taken
        ]
        devices.sort(key=lambda c: (c.hive in running, -(c.free_memory or 0)))
        return found + devices

    def scale_out(self, name: str, workers: list[WorkerRef]) -> bool:
        """Whether a replica of ``name`` may start: every worker of it is without room,
        jobs wait for it, and it has fewer than its ``max_replicas`` (none starting)."""
        return (
            bool(workers)
            and all(w.queue.full for w in workers)
            and self.waiting.count(name) > 0
            and self.replicas.may_add(name)
        )

    async def run(
        self, job: Job, name: str, relay: Callable[[Job, WorkerRef], Coroutine[Any, Any, None]]
    ) -> None:
        """Place ``job`` and ``relay`` it to its worker, holding one of its slots; placed
        again, keeping its place in line, when the worker went away before the job reached
        it (``WorkerGone``: an accepted job is never lost to an eviction), and when it was
        lost mid-answer (``max_retries`` times; then the job fails naming every run)."""
        ticket = self.waiting.ticket()
        gone = 0  # placements on workers unloaded before the job reached them
        losses: list[RbeeError] = []
        avoid: set[str] = set()  # hives lost or draining: not for this job again
        while True:
            try:
                worker = await self.place(job, name, ticket, frozenset(avoid))
            except RbeeError as exc:  # no worker for it now: no hive, no room
                if not losses:
                    raise
                last = losses[-1]  # what the job lost is the news, then why it cannot move
                raise type(last)(
                    f"{last.message}; and the job cannot move: {exc.message}", **last.details
                ) from exc
            attempt = asyncio.create_task(relay(job, worker), name=f"{job.id} on {worker.id}")
            self._attempts[job.id] = attempt
            try:
                await attempt
                return
            except WorkerGone as exc:
                if job.runs and job.runs[-1]["worker"] == worker.id:
                    job.runs.pop()  # the job never reached it: no run to record
                gone += 1
                if gone == MAX_PLACEMENTS:
                    raise
                job.requeue()
                self.say(job, "replace", f"{exc.message}; placing the job again")
            except (WorkerLost, HiveUnreachable) as exc:
                self._lost(job, worker, exc, losses, avoid)
            except asyncio.CancelledError:
                why = self._interrupts.pop(job.id, None)
                task = asyncio.current_task()
                if why is None or (task is not None and task.cancelling()):
                    raise  # the job itself is cancelled (or the queen stops)
                self._lost(job, worker, why, losses, avoid)
            finally:
                self._attempts.pop(job.id, None)
                self._interrupts.pop(job.id, None)
                worker.queue.give_back()
                self.waiting.poke(name)

    def interrupt(self, job_id: str, why: RbeeError) -> bool:
        """Stop the job's run on its worker for ``why`` (its hive went silent, or drains):
        the job moves to another worker. False if it is not running on one now."""
        attempt = self._attempts.get(job_id)
        if attempt is None or attempt.done():
            return False
        self._interrupts[job_id] = why
        attempt.cancel()
        return True

    def _lost(
        self, job: Job, worker: WorkerRef, why: RbeeError, losses: list[RbeeError], avoid: set[str]
    ) -> None:
        """The job's worker was lost mid-run (or its hive drains): move the job, or raise
        why it cannot move (pinned to that hive, or out of retries)."""
        if job.runs and job.runs[-1]["worker"] == worker.id:
            job.runs[-1]["error"] = f"{why.code}: {why.message}"
        hive_gone = isinstance(why, HiveUnreachable | HiveDraining)
        if hive_gone:
            # The hive that went: the worker's, or one holding part of its model.
            gone = why.details.get("hive")
            avoid.add(gone if isinstance(gone, str) else worker.hive)
            if job.request.hive == worker.hive:
                why.message += f"; the job is pinned to hive {worker.hive}, so it cannot move"
                raise why
        if not isinstance(why, HiveDraining):
            losses.append(why)
            if len(losses) > self.max_retries:
                raise _out_of_retries(job, losses)
        job.requeue()
        counted = (
            f" (move {len(losses)} of at most {self.max_retries})"
            if not isinstance(why, HiveDraining)
            else ""
        )
        self.say(
            job,
            "job_moved",
            f"{why.message}; the job moves to another worker after {job.tokens} "
            f"token(s){counted}, and goes on from there",
        )

    async def place(
        self, job: Job, name: str, ticket: int | None = None, avoid: frozenset[str] = frozenset()
    ) -> WorkerRef:
        """A worker for ``job`` (of model ``name``, the catalog's name for it), with one of
        its slots taken for the job: waits in the model's line until it can."""
        request = job.request
        key = (name, request.hive, request.device, request.backend)
        place = self.waiting.join(key, job, self.waiting.ticket() if ticket is None else ticket)
        try:
            if (position := self.waiting.position(place)) > 0:
                self.waiting.tell(place, position)
            while True:
                if self.waiting.is_head(place):
                    worker = await self._try(job, name, place, avoid)
                    if worker is not None:
                        return worker
                await self.waiting.wait(place)
        finally:
            self.waiting.leave(place)

    async def _try(
        self, job: Job, name: str, place: Place, avoid: frozenset[str]
    ) -> WorkerRef | None:
        """The head of a line asks the policy: a worker with room (its slot taken), or
        ``None`` to wait (for a full or starting worker, or a replica it started)."""
        hives = await self.hives_for(job, avoid)
        workers = self.fleet.workers
        self.fleet.index.keep_only(workers)
        blocks = prompt_blocks(job.request.prompt, job.request.turns)
        candidates = self.candidates(job, name, hives, blocks)
        chosen = self.pm.hook.rbee_schedule(job=job, candidates=candidates)
        if chosen is None:
            raise NoPlacement(f"no hive can run model {name}: {why_not(job, hives)}")
        if chosen.worker_id is not None and chosen.worker_id in workers:
            worker = workers[chosen.worker_id]
            if worker.queue.take():
                self._chosen(job, name, worker, chosen, candidates)
                return worker
            self._wait_for(place, name, worker)
            return None
        if chosen.starting or chosen.worker_id is not None:
            self._wait_for(place, name, None)
            return None
        record = self.fleet.hives.get(chosen.hive)
        if any(c.worker_id is not None or c.starting for c in candidates):
            self.replicas.start(job, name, record, chosen.device, self.waiting.count(name))
            self._wait_for(place, name, None)
            return None
        worker = await self._spawn(job, name, record, chosen, avoid)
        if worker.queue.take():
            return worker
        return None  # another line of the model took its slots first

    def _chosen(
        self, job: Job, name: str, worker: WorkerRef, chosen: Candidate, others: list[Candidate]
    ) -> None:
        """Narrate why ``worker`` got the job: the prefix it holds, or its load."""
        if chosen.prefix_tokens > 0 and chosen.prefix_tokens >= max(
            c.prefix_tokens for c in others
        ):
            why = (
                f"holds {chosen.prefix_tokens:,} of this job's {chosen.prompt_tokens:,} "
                "prompt tokens"
            )
        else:
            why = f"is least loaded ({chosen.busy} of {chosen.slots} slots in use)"
        self.say(
            job,
            "worker_reuse",
            f"the worker {worker.id} already has {name} loaded; on {worker.hive} it {why}",
        )

    def _wait_for(self, place: Place, name: str, worker: WorkerRef | None) -> None:
        """Narrate, once per wait, that the head of a line waits for room."""
        if place.told == 0:
            return
        if worker is not None:
            why = f"the worker is busy with {worker.queue.running} job(s)"
        else:
            why = f"waiting for a worker of {name} to have room"
        self.waiting.tell(place, 0, why)

    async def _spawn(
        self,
        job: Job,
        name: str,
        record: HiveRecord,
        chosen: Candidate,
        avoid: frozenset[str] = frozenset(),
    ) -> WorkerRef:
        """The model's first worker, started for ``job`` (which waits for it)."""
        where = record.describe()
        self.say(
            job,
            "schedule",
            f"picked {chosen.device} on {where} for our inference "
            "job (other placement policies: docs/scheduling.md)",
        )
        self.say(job, "worker_wait", "we're now waiting for the worker bee to wake up")
        keep_alive = self.replicas.keep_alive(name, job.request.keep_alive)
        try:
            if job.request.split:
                worker = await self.splitter.start(
                    job,
                    name,
                    self.splitter.hives(job, avoid),
                    self._narration_of(job),
                    keep_alive,
                    room_wait=room_wait(job),
                )
            else:
                worker = await self.fleet.spawn_worker(
                    record,
                    job.request.model,
                    chosen.device,
                    self._narration_of(job),
                    keep_alive,
                    job.request.backend,
                    room_wait=room_wait(job),
                )
        except RbeeError as exc:
            # No amount of waiting frees enough there (the hive's error, relayed): split
            # the model across hives, when the job let the queen choose where it runs.
            request = job.request
            never = exc.code == DeviceTooSmall.code and exc.details.get("never")
            if not never or request.split or request.hive or request.device:
                raise
            hives = self.splitter.hives(job, avoid)  # not a hive the job was lost on
            if len(hives) < 2:
                raise
            worker = await self.splitter.start(
                job,
                name,
                hives,
                self._narration_of(job),
                keep_alive,
                room_wait=room_wait(job),
                why=exc,
            )
        self.say(job, "worker_ready", f"the worker bee is awake: {worker.describe()}")
        self.waiting.poke(name)
        return worker

    def _narration_of(self, job: Job) -> Callable[[Narration], None]:
        """The worker start's narration, into the job's stream."""

        def relay(narration: Narration) -> None:
            self.pm.hook.rbee_narrate(narration=dataclasses.replace(narration, job_id=job.id))

        return relay


def _out_of_retries(job: Job, losses: list[RbeeError]) -> RbeeError:
    """The last loss, its message naming every run of the job and how it ended."""
    last = losses[-1]
    runs = "; ".join(
        f"{i}. {r['worker']} on hive {r['hive']}: {r.get('error', 'running')}"
        for i, r in enumerate(job.runs, 1)
    )
    return type(last)(
        f"the job was lost {len(losses)} times, more than its {len(losses) - 1} retries "
        f"allow (queen-rbee --max-retries): {runs}",
        **last.details,
        runs=len(job.runs),
    )


def _hold(task: asyncio.Task[Any]) -> None:
    """Keep a background task referenced until it ends (without a queen's ``keep``)."""
    _held.add(task)
    task.add_done_callback(_held.discard)


_held: set[asyncio.Task[Any]] = set()


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
