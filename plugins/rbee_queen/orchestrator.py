"""The queen's service object: it accepts jobs and runs each one as a task that places it
(placement.py) on a worker of the fleet (fleet.py) and relays the worker's stream (relay.py).

Plugins get the ``Queen`` as ``rbee_core.queen_api.QueenApi``: what they may use of it is
declared there. The rest (``fleet``, ``store``, ``http``, ``placement``...) is the queen's
own, for its own routes and for the plugins that manage hives themselves (rbee_ray, the
Ollama API's model routes).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pluggy

from rbee_core.errors import (
    DeadlineExceeded,
    HiveDraining,
    HiveUnreachable,
    InternalError,
    QueenShutdown,
    QueueFull,
    RbeeError,
)
from rbee_core.events import EventType, JobEnd
from rbee_core.job_registry import JobRegistry
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job, JobState
from rbee_core.messages import FinishReason, HiveState
from rbee_core.narration import Narration
from rbee_core.paths import state_dir
from rbee_core.plugins import model_catalog
from rbee_core.queen_api import WorkerLoad
from rbee_queen import scheduler
from rbee_queen.fleet import LOCAL_HIVE, Fleet, WorkerRef
from rbee_queen.hives import HiveRecord, HiveRegistry
from rbee_queen.job_store import PRUNE_BATCH, JobStore
from rbee_queen.placement import DEFAULT_MAX_RETRIES, Placement
from rbee_queen.relay import Relay
from rbee_queen.replicas import DEFAULT_MAX_REPLICAS
from rbee_queen.sinks import JobStreamSink
from rbee_structured.grammar import check_request

__all__ = ["Queen", "WorkerRef"]

ACTOR = "queen-rbee"
PRUNE_EVERY = 600.0  # seconds between purges of expired job records
log = logging.getLogger("rbee.queen")


def _fail(job: Job, error: RbeeError) -> None:
    """End the job with an error event (the error's code, message and details), unless it
    has already ended."""
    if not job.log.closed:
        job.emit(EventType.ERROR, error.to_dict()["error"])


class Queen:
    """Owns the jobs and their tasks; the fleet, placement and relay do the rest."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        url: str = "",
        heartbeat: float = 2.0,
        hive_timeout: float | None = None,
        job_retention: float = 7 * 24 * 3600,
        max_queue: int = 16,
        orphan_timeout: float = 300.0,
        max_replicas: int = DEFAULT_MAX_REPLICAS,
        replicas: dict[str, tuple[int, int]] | None = None,
        load_margin: int | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        self.max_queue = max_queue
        self.orphan_timeout = orphan_timeout
        self.pm = pm
        self.url = url
        self.heartbeat = heartbeat
        # Finished jobs live in the store, not in memory: the registry reads them back.
        self.store = JobStore(state_dir() / "queen-jobs.sqlite", job_retention)
        self.jobs = JobRegistry(load=self.store.get)
        self.catalog = model_catalog(pm)
        self.fleet = Fleet(url, heartbeat, hive_timeout)
        if load_margin is not None:
            scheduler.LOAD_MARGIN = load_margin  # the default policy's, process-wide
        # Per-model replica bounds, under the catalog's name for each model.
        bounds = {self._name(m): limits for m, limits in (replicas or {}).items()}
        self.placement = Placement(
            self.fleet, pm, self.narrate, self.keep, max_replicas, bounds, max_retries
        )
        self.relay = Relay(self.fleet, pm, self.narrate, lambda job: self.store.save(job))
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._failures: dict[str, RbeeError] = {}  # job id -> why it failed, set by monitor
        self._listeners: dict[str, int] = {}  # job id -> open streams
        self._left: dict[str, float] = {}  # job id -> when its last listener left
        pm.register(JobStreamSink(self.jobs), name="queen-job-stream")
        # The jobs the last queen died with: placed again when this one starts.
        self._unfinished = self.store.unfinished()
        self._next_prune = time.monotonic()  # the monitor's first tick purges what expired
        pm.register(self.store, name="queen-job-store")

    @property
    def hives(self) -> HiveRegistry:
        return self.fleet.hives

    @property
    def workers(self) -> dict[str, WorkerRef]:
        return self.fleet.workers

    @property
    def http(self) -> httpx.AsyncClient:
        return self.fleet.http

    @http.setter
    def http(self, client: httpx.AsyncClient) -> None:
        self.fleet.http = client

    # -- jobs ---------------------------------------------------------------------------

    def narrate(self, job: Job, action: str, message: str, actor: str = ACTOR) -> None:
        self.announce(Narration(actor, action, message, job.id))

    def announce(self, narration: Narration) -> None:
        self.pm.hook.rbee_narrate(narration=narration)

    # -- what plugins read (rbee_core.queen_api) -----------------------------------------

    def job_records(self, limit: int) -> list[dict[str, Any]]:
        return self.store.page(limit)[0]

    def job_state_counts(self) -> dict[str, int]:
        return self.store.states()

    def hive_listing(self) -> list[dict[str, Any]]:
        return [record.to_json() for record in self.hives]

    def hive_states(self) -> list[HiveState]:
        return [record.state for record in self.hives]

    def worker_loads(self) -> dict[str, WorkerLoad]:
        return {
            worker_id: WorkerLoad(ref.queue.running, ref.queue.waiting)
            for worker_id, ref in self.workers.items()
        }

    def model_name(self, model: str) -> str:
        """The catalog's name for what a user typed (its alias, else the full reference),
        after checking the reference resolves."""
        self.catalog.resolve(model)
        return self._name(model)

    def _name(self, model: str) -> str:
        """``model_name`` without the check (no I/O): for jobs already accepted."""
        return self.catalog.name_of(model)

    def submit(self, request: JobRequest) -> Job:
        """Accept a job (the model must resolve) and start running it in the background."""
        self._check_queue(self.model_name(request.model))
        if request.hive is not None and request.hive != LOCAL_HIVE:
            self.hives.get(request.hive)  # an unknown hive is a 404 now, not a failed job
        check_request(request)  # a schema no backend could enforce is a 400, not a failed job
        if request.seed is None and not request.embed and request.temperature > 0:
            # Sampled without a seed: one of the queen's, in the record and the end event,
            # so the answer can be had again (and a job moved mid-answer goes on the same).
            request = msgspec.structs.replace(request, seed=secrets.randbits(32))
        job = self.jobs.create(request)
        self.store.follow(job)  # its events, written as they happen, survive the queen
        self.pm.hook.rbee_job_submitted(job=job)
        if request.response_format is not None:
            shape = request.response_format.describe()
            self.narrate(job, "job_constrained", f"the answer is held to {shape}")
        self._start(job)
        return job

    def _start(self, job: Job, resumed: bool = False) -> None:
        self._tasks[job.id] = asyncio.create_task(self._run(job, resumed), name=job.id)
        self._tasks[job.id].add_done_callback(lambda _: self._tasks.pop(job.id, None))

    def _resume(self) -> None:
        """Take back the jobs the last queen died with: each is a live job again at once
        (a client reconnecting with Last-Event-ID finds it), and is placed again once the
        hives have re-joined (``_hives_rejoined``), to go on where its clients are; unless
        its deadline passed while no queen ran."""
        resumed, late = [], 0
        for job in self._unfinished:
            timeout = job.request.timeout
            if timeout is not None and time.time() - job.created_at >= timeout:
                self.store.fail(
                    job,
                    f"the job's {timeout:g} s deadline passed while the queen was down",
                    DeadlineExceeded.code,
                )
                self.jobs.add(job)
                late += 1
                continue
            was = job.state
            job.requeue()
            self.jobs.add(job)
            self.store.follow(job)
            self.narrate(
                job,
                "job_resumed",
                f"the queen restarted while the job was {was.value} ({job.tokens} token(s) "
                "sent); placing it again, to go on from there",
            )
            resumed.append(job)
        self._unfinished = []
        if resumed or late:
            log.warning(
                "queen-rbee: resumed %d unfinished job(s) the last queen left; "
                "%d failed, their deadline passed",
                len(resumed),
                late,
            )
        for job in resumed:
            self._start(job, resumed=True)

    async def _hives_rejoined(self) -> None:
        """Hives re-register at their next heartbeat (it gets a 404 from a new queen):
        wait for them a little, so a resumed job goes to its cluster rather than to a hive
        started on this machine because none had re-joined yet."""
        for _ in range(round((2 * self.heartbeat + 1.0) / 0.1)):
            if self.hives.ready():
                return
            await asyncio.sleep(0.1)

    def _check_queue(self, name: str) -> None:
        """Refuse at once, rather than queue without bound, when the model's queue is full."""
        live = (self.jobs.get(job_id) for job_id in self._tasks)  # unfinished jobs only
        waiting = sum(
            1 for j in live if j.state is JobState.QUEUED and self._name(j.request.model) == name
        )
        if waiting < self.max_queue:
            return
        # Only when refusing: how long this model's recent jobs took, for Retry-After.
        done = [j for j in self.jobs if j.state is JobState.COMPLETED and j.finished_at]
        recent = [
            j.finished_at - j.created_at
            for j in done[-50:]
            if j.finished_at is not None and self._name(j.request.model) == name
        ][-20:]
        per_job = sum(recent) / len(recent) if recent else 10.0
        retry = max(1, round(per_job))
        raise QueueFull(
            f"{waiting} jobs are already waiting for {name} (the limit is {self.max_queue}); "
            f"retry in about {retry} s",
            retry_after=retry,
            model=name,
        )

    def listening(self, job: Job) -> Callable[[], None]:
        """Count a stream listener of ``job``; call the result when it leaves."""
        self._listeners[job.id] = self._listeners.get(job.id, 0) + 1

        def left() -> None:
            self._listeners[job.id] -= 1
            if not self._listeners[job.id]:
                del self._listeners[job.id]  # nothing per job outlives it
                if job.id in self._tasks:
                    self._left[job.id] = time.monotonic()

        return left

    def _cancel_orphans(self) -> None:
        """A job whose every listener left ``orphan_timeout`` seconds ago is cancelled: nobody
        will read it. (A job nobody ever attached to, ``--detach``, runs to its end.)"""
        now = time.monotonic()
        for job_id, since in list(self._left.items()):
            if job_id not in self._tasks:  # it ended
                del self._left[job_id]
                continue
            if self._listeners.get(job_id) or now - since < self.orphan_timeout:
                continue
            del self._left[job_id]
            job = self.jobs.get(job_id)
            if not job.log.closed:
                self.narrate(
                    job,
                    "orphaned",
                    f"nobody has listened to this job for {now - since:.0f} s; cancelling it",
                )
                self.request_cancel(job_id)

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a background task until it ends (the loop keeps only weak references);
        the queen cancels it at shutdown. A failure is logged, never left unretrieved."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)

    def request_cancel(self, job_id: str) -> asyncio.Task[None] | None:
        """Start cancelling a job; the task that runs it, if it was still running.

        Queued, the job leaves the queue; running, its worker sees its stream close, stops
        generating and is free for the next job. The job's stream ends with an ``end``
        event of outcome ``cancelled``. A finished job is left as it is.
        """
        job = self.jobs.get(job_id)
        task = self._tasks.get(job_id)
        if task is None or job.log.closed:
            return None
        job.cancel_requested = True
        task.cancel()
        return task

    async def cancel(self, job_id: str) -> Job:
        """Cancel a job (see ``request_cancel``) and wait until it has really ended."""
        task = self.request_cancel(job_id)
        if task is not None:
            await asyncio.wait({task}, timeout=10)
        return self.jobs.get(job_id)

    async def _run(self, job: Job, resumed: bool = False) -> None:
        timeout = job.request.timeout
        # Counted from the job's submission, so also across a restart of the queen.
        left = None if timeout is None else max(0.0, timeout - (time.time() - job.created_at))
        try:
            async with asyncio.timeout(left):
                if resumed:  # taken back at the queen's start: its hives first
                    await self._hives_rejoined()
                await self.placement.run(job, self._name(job.request.model), self.relay.run)
        except TimeoutError:
            _fail(
                job,
                DeadlineExceeded(
                    f"the job did not finish within its {job.request.timeout:g} s deadline"
                ),
            )
        except RbeeError as exc:
            _fail(job, exc)
        except asyncio.CancelledError:
            if job.id in self._failures:  # the monitor found its hive dead
                _fail(job, self._failures.pop(job.id))
            elif not job.cancel_requested:
                _fail(job, QueenShutdown("the queen shut down before the job finished"))
                raise
            elif not job.log.closed:
                self.narrate(job, "cancelled", "the job was cancelled")
                end = JobEnd(
                    outcome=JobState.CANCELLED,
                    finish_reason=FinishReason.CANCELLED,
                    completion_tokens=job.tokens,
                )
                job.emit(EventType.END, end.to_json())
        except Exception as exc:
            log.exception("job %s failed", job.id)
            _fail(job, InternalError(f"{type(exc).__name__}: {exc}"))
        finally:
            _fail(job, InternalError("the job ended without a result"))
            self.pm.hook.rbee_job_finished(job=job)
            self.jobs.finished(job)  # its record is written: it leaves memory

    # -- the fleet's hives and workers ---------------------------------------------------

    async def local_hive(self, job: Job | None = None) -> HiveRecord:
        """This machine's hive (``Fleet.local_hive``), narrated into ``job`` if given."""
        say = None if job is None else (lambda a, m: self.narrate(job, a, m))
        return await self.fleet.local_hive(say)

    async def monitor(self) -> None:
        """Cancel orphaned jobs; fail the jobs that ran on hives that stopped heartbeating."""
        while True:
            await asyncio.sleep(min(self.heartbeat, 1.0))
            self._cancel_orphans()
            self._keep_records()
            for silent in self.fleet.mark_silent():
                for job_id, task in list(self._tasks.items()):
                    job = self.jobs.get(job_id)
                    if job.worker in silent.lost and not job.log.closed:
                        worker = silent.lost[job.worker]
                        held = (
                            f"it held part of the model of worker {worker.id} (on hive "
                            f"{worker.hive}), which is lost"
                            if worker.hive != silent.record.name
                            else f"its worker {worker.id} is lost"
                        )
                        why = HiveUnreachable(
                            f"{silent.why}; {held}",
                            hive=silent.record.name,
                            worker=job.worker,
                        )
                        if not self.placement.interrupt(job_id, why):  # it moves, else fails
                            self._failures[job_id] = why
                            task.cancel()

    def _keep_records(self) -> None:
        """Write the job records whose write failed (a full disk), and purge expired ones."""
        self.store.retry()
        # A full batch purged: more to go at the next tick.
        if time.monotonic() >= self._next_prune and self.store.prune() < PRUNE_BATCH:
            self._next_prune = time.monotonic() + PRUNE_EVERY

    def start(self) -> None:
        self.keep(asyncio.create_task(self.monitor()))
        self._resume()
        self.pm.hook.rbee_queen_started(queen=self)

    async def drain(self, name: str, patience: float = 120.0) -> HiveRecord:
        """Place no new job on hive ``name`` and move the jobs running there to other
        hives, each going on where it was (placement.py): what ``hive stop --drain`` and a
        hive's SIGTERM do before it stops. Returns once no job runs there (or after
        ``patience`` seconds)."""
        record = self.hives.get(name)
        record.state = HiveState.DRAINING
        why = HiveDraining(f"hive {name} is draining before it stops", hive=name)
        deadline = time.monotonic() + patience
        moved: set[str] = set()
        while True:
            there = {w.id for w in self.workers.values() if w.hive == name}
            running = [j for j in self.jobs.live if j.worker in there]
            for job in running:
                if self.placement.interrupt(job.id, why):
                    moved.add(job.id)
            if not running or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        log.warning("queen-rbee: drained hive %s: %d job(s) moved to other hives", name, len(moved))
        return record

    # -- shutdown -----------------------------------------------------------------------

    async def close(self) -> None:
        """Cancel running jobs, stop the hives the queen started (they stop their workers),
        close connections. Hives that joined on their own are left running."""
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.fleet.close()
        self.store.close()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("background task %s failed: %r", task.get_name(), error, exc_info=error)
