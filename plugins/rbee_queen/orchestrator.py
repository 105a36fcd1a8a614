"""The queen's work: accept a job, place it on a worker of some hive, relay its stream."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pluggy
from httpx_sse import EventSource

from rbee_core.errors import (
    DeadlineExceeded,
    HiveError,
    HiveUnreachable,
    InternalError,
    NoPlacement,
    QueenShutdown,
    QueueFull,
    RbeeError,
    WorkerLost,
)
from rbee_core.events import DONE, EventType
from rbee_core.job_registry import JobRegistry
from rbee_core.jobs import Job, JobRequest, JobState
from rbee_core.messages import HiveState
from rbee_core.narration import Narration
from rbee_core.paths import state_dir
from rbee_core.plugins import model_catalog
from rbee_core.scheduling import Candidate
from rbee_core.slots import Slots
from rbee_http.auth import auth_headers
from rbee_queen import hive_client
from rbee_queen.hives import HiveRecord, HiveRegistry
from rbee_queen.job_store import JobStore
from rbee_queen.launcher import spawn_local_hive
from rbee_queen.sinks import JobStreamSink

__all__ = ["Queen", "WorkerRef"]

ACTOR = "queen-rbee"
LOCAL_HIVE = "localhost"
log = logging.getLogger("rbee.queen")


def _fail(job: Job, error: RbeeError) -> None:
    """End the job with an error event (the error's code, message and details), unless it
    has already ended."""
    if not job.log.closed:
        job.emit(EventType.ERROR, error.to_dict()["error"])


@dataclass(eq=False)
class WorkerRef:
    """A worker as the queen sees it: where it is, and the jobs running on it or lined up
    for it. It runs ``slots`` jobs at once (its batch size); the rest wait here."""

    id: str
    hive: str
    model: str
    device: str
    url: str
    slots: int = 1
    backend: str = ""
    quantization: str = ""
    jobs_served: int = 0
    queue: Slots = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.queue = Slots(self.slots)

    @classmethod
    def from_info(cls, hive: str, info: dict[str, Any]) -> WorkerRef:
        """From a worker as a hive lists it."""
        return cls(
            info["id"],
            hive,
            info["model"],
            info["device"],
            info["url"],
            int(info.get("slots", 1)),
            str(info.get("backend", "")),
            str(info.get("quantization", "")),
        )

    def describe(self) -> str:
        engine = " ".join(filter(None, (self.backend, self.quantization)))
        return f"{self.id} ({self.model} on {self.device} of hive {self.hive}, {engine or '?'})"


class Queen:
    """Owns the job registry, the hive registry, the workers and the in-flight job tasks."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        url: str = "",
        heartbeat: float = 2.0,
        hive_timeout: float | None = None,
        job_retention: float = 7 * 24 * 3600,
        max_queue: int = 16,
        orphan_timeout: float = 300.0,
    ) -> None:
        self.max_queue = max_queue
        self.orphan_timeout = orphan_timeout
        self.pm = pm
        self.url = url
        self.heartbeat = heartbeat
        self.jobs = JobRegistry()
        self.catalog = model_catalog(pm)
        self._alias_of = {ref: alias for alias, ref in self.catalog.aliases.items()}
        self.hives = HiveRegistry(hive_timeout or 3 * heartbeat + 1)
        self.workers: dict[str, WorkerRef] = {}
        self._processes: dict[str, asyncio.subprocess.Process] = {}  # hives started here
        self._local_lock = asyncio.Lock()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._failures: dict[str, RbeeError] = {}  # job id -> why it failed, set by monitor
        self._listeners: dict[str, int] = {}  # job id -> open streams
        self._left: dict[str, float] = {}  # job id -> when its last listener left
        # Streams can be idle for minutes while a worker loads: no read timeout.
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, read=None), headers=auth_headers()
        )
        pm.register(JobStreamSink(self.jobs), name="queen-job-stream")
        self.store = JobStore(state_dir() / "queen-jobs.sqlite", job_retention)
        for old in self.store.load():
            self.jobs.add(old)
        pm.register(self.store, name="queen-job-store")

    # -- jobs ---------------------------------------------------------------------------

    def narrate(self, job: Job, action: str, message: str, actor: str = ACTOR) -> None:
        self.pm.hook.rbee_narrate(narration=Narration(actor, action, message, job.id))

    def model_name(self, model: str) -> str:
        """The catalog's name for what a user typed (its alias, else the full reference),
        after checking the reference resolves."""
        self.catalog.resolve(model)
        return self._name(model)

    def _name(self, model: str) -> str:
        """``model_name`` without the check (no I/O): for jobs already accepted."""
        ref = self.catalog.aliases.get(model, model)
        return self._alias_of.get(ref, ref)

    def submit(self, request: JobRequest) -> Job:
        """Accept a job (the model must resolve) and start running it in the background."""
        self._check_queue(self.model_name(request.model))
        if request.hive is not None and request.hive != LOCAL_HIVE:
            self.hives.get(request.hive)  # an unknown hive is a 404 now, not a failed job
        job = self.jobs.create(request)
        self.pm.hook.rbee_job_submitted(job=job)
        self._tasks[job.id] = asyncio.create_task(self._run(job), name=job.id)
        self._tasks[job.id].add_done_callback(lambda _: self._tasks.pop(job.id, None))
        return job

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
                self._left[job.id] = time.monotonic()

        return left

    def _cancel_orphans(self) -> None:
        """A job whose every listener left ``orphan_timeout`` seconds ago is cancelled: nobody
        will read it. (A job nobody ever attached to, ``--detach``, runs to its end.)"""
        now = time.monotonic()
        for job_id, since in list(self._left.items()):
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

    async def _run(self, job: Job) -> None:
        try:
            async with asyncio.timeout(job.request.timeout):
                worker = await self._place(job)
                await self._relay(job, worker)
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
                job.emit(
                    EventType.END,
                    {
                        "outcome": "cancelled",
                        "finish_reason": "cancelled",
                        "completion_tokens": job.tokens,
                    },
                )
        except Exception as exc:
            log.exception("job %s failed", job.id)
            _fail(job, InternalError(f"{type(exc).__name__}: {exc}"))
        finally:
            _fail(job, InternalError("the job ended without a result"))
            self.pm.hook.rbee_job_finished(job=job)

    # -- hives --------------------------------------------------------------------------

    async def local_hive(self, job: Job | None = None) -> HiveRecord:
        """The hive of this machine: started by the queen on first use if none has joined,
        as the happy flow narrates (into ``job`` if given)."""

        def say(action: str, message: str) -> None:
            if job is not None:
                self.narrate(job, action, message)

        async with self._local_lock:
            record = self.hives.hives.get(LOCAL_HIVE)
            if record is not None and record.state != "unreachable":
                await self._await_ready(record)
                return record
            if not self.hives.hives:
                say("hive_none", "No hives found.")
            say("hive_add", "Adding local pc to hive catalog.")
            say("hive_wake", "waking up the bee hive at localhost")
            process = await spawn_local_hive(self.url, LOCAL_HIVE, self.heartbeat)
            self._processes[LOCAL_HIVE] = process
            try:
                record = await self._wait_registered(LOCAL_HIVE, process)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                raise
            record.started_here = True
            say(
                "hive_heartbeat",
                "first heartbeat from a bee hive is received from localhost. "
                "checking its capabilities...",
            )
            say(
                "hive_detect",
                "unknown capabilities of beehive localhost. asking the beehive to detect devices",
            )
            await self.learn(record)
            say("hive_ready", f"the bee hive at localhost has: {_devices(record)}")
            return record

    async def _wait_registered(self, name: str, process: asyncio.subprocess.Process) -> HiveRecord:
        timeout = 60.0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise HiveUnreachable(
                    f"the hive {name} exited (code {process.returncode}) before its first "
                    "heartbeat; see its log in the state dir"
                )
            record = self.hives.hives.get(name)
            if record is not None and record.first_heartbeat.is_set():
                return record
            await asyncio.sleep(0.05)
        raise HiveUnreachable(f"no heartbeat from hive {name} in {timeout:.0f} s")

    async def _await_ready(self, record: HiveRecord) -> None:
        if not record.first_heartbeat.is_set():
            await asyncio.wait_for(record.first_heartbeat.wait(), 60)
        if not record.devices:
            await self.learn(record)

    async def check_reachable(self, name: str, url: str) -> None:
        """Refuse a hive whose URL does not answer as that hive: a job for it would fail,
        or run on whatever else answers there."""
        why = None
        try:
            health = await hive_client.call(self.http, "GET", f"{url}/health", timeout=5.0)
        except RbeeError as exc:
            why = exc.message.removeprefix(f"cannot reach the hive at {url}/health: ")
        else:
            if isinstance(health, dict) and health.get("name") not in (None, name):
                why = f"hive {health.get('name')!r} answers there"
        if why is not None:
            raise HiveUnreachable(
                f"the queen cannot reach hive {name} at {url}: {why}. Start the hive with "
                "--advertise-url set to an address the queen can reach",
                hive=name,
            )

    async def learn_later(self, record: HiveRecord) -> None:
        """``learn`` a hive that joined on its own, retrying with backoff while it does not
        answer; each failure is logged and kept on its record for ``hive list``."""
        delay = self.heartbeat
        while self.hives.hives.get(record.name) is record and not record.devices:
            try:
                await self.learn(record)
                record.problem = None
                return
            except RbeeError as exc:
                record.problem = exc.message
                log.warning("hive %s: %s; asking again in %.0f s", record.name, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def learn(self, record: HiveRecord) -> None:
        """Ask a hive for its capabilities; it is ready once the queen knows them."""
        caps = await hive_client.call(self.http, "GET", f"{record.url}/capabilities")
        record.devices = caps["devices"]
        record.backends = caps["backends"]
        record.models = caps["models"]
        record.workers = caps["workers"]
        record.state = HiveState.READY

    def forget_workers(self, hive: str) -> list[WorkerRef]:
        gone = [w for w in self.workers.values() if w.hive == hive]
        for worker in gone:
            del self.workers[worker.id]
        return gone

    def sync_workers(self, record: HiveRecord) -> None:
        """Workers the hive no longer reports (idle-stopped, crashed) leave the queen's table;
        ones it reports that the queen did not start (spawned directly) join it."""
        reported = {w["id"]: w for w in record.workers}
        for worker in [w for w in self.workers.values() if w.hive == record.name]:
            if worker.id not in reported and not worker.queue.load:
                del self.workers[worker.id]
        for worker_id, info in reported.items():
            if worker_id not in self.workers:
                self.workers[worker_id] = WorkerRef.from_info(record.name, info)

    async def monitor(self) -> None:
        """Mark hives that stopped heartbeating unreachable; fail the jobs running there."""
        while True:
            await asyncio.sleep(min(self.heartbeat, 1.0))
            self._cancel_orphans()
            for record in self.hives.silent():
                silence = time.time() - (record.last_heartbeat or record.registered_at)
                record.state = HiveState.UNREACHABLE
                why = f"hive {record.name} is unreachable: no heartbeat for {silence:.1f} s"
                log.warning(why)
                lost = {w.id: w for w in self.forget_workers(record.name)}
                for job_id, task in list(self._tasks.items()):
                    job = self.jobs.get(job_id)
                    if job.worker in lost and not job.log.closed:
                        self._failures[job_id] = HiveUnreachable(
                            f"{why}; its worker {lost[job.worker].id} is lost",
                            hive=record.name,
                            worker=job.worker,
                        )
                        task.cancel()

    def start(self) -> None:
        self.keep(asyncio.create_task(self.monitor()))

    # -- placing a job ------------------------------------------------------------------

    async def _hives_for(self, job: Job) -> list[HiveRecord]:
        pinned = job.request.hive
        if pinned is not None and pinned != LOCAL_HIVE:
            record = self.hives.get(pinned)
            if not record.ready:
                raise NoPlacement(f"hive {pinned} is {record.state}; it takes no new jobs")
            return [record]
        if pinned == LOCAL_HIVE or not any(r.ready for r in self.hives.hives.values()):
            return [await self.local_hive(job)]
        return [r for r in self.hives.hives.values() if r.ready]

    def candidates(self, job: Job, name: str, hives: list[HiveRecord]) -> list[Candidate]:
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
                for w in self.workers.values()
                if w.hive == record.name
                and w.model == name
                and job.request.device in (None, w.device)
                and backend in (None, w.backend)
            ]
            if backend is not None and backend not in record.backends:
                continue  # this hive cannot start a worker of that backend
            found += [
                Candidate(record.name, d["id"], free_memory=d.get("free_memory"), backend=backend)
                for d in record.devices
                if job.request.device in (None, d["id"])
            ]
        return found

    async def _place(self, job: Job) -> WorkerRef:
        name = self._name(job.request.model)  # checked when the job was accepted
        hives = await self._hives_for(job)
        chosen = self.pm.hook.rbee_schedule(job=job, candidates=self.candidates(job, name, hives))
        if chosen is None:
            raise NoPlacement(f"no hive can run model {name}: {_why_not(job, hives)}")
        if chosen.worker_id is not None and chosen.worker_id in self.workers:
            worker = self.workers[chosen.worker_id]
            self.narrate(job, "worker_reuse", f"the worker {worker.id} already has {name} loaded")
            return worker
        self.narrate(
            job,
            "schedule",
            f"picked {chosen.device} on {chosen.hive} for our inference "
            "job (other placement policies: docs/scheduling.md)",
        )
        self.narrate(job, "worker_wait", "we're now waiting for the worker bee to wake up")
        worker = await self.spawn_worker(
            self.hives.get(chosen.hive),
            job.request.model,
            chosen.device,
            self._relay_narration(job),
            job.request.keep_alive,
            job.request.backend,
        )
        self.narrate(job, "worker_ready", f"the worker bee is awake: {worker.describe()}")
        return worker

    def _relay_narration(self, job: Job) -> Callable[[Narration], None]:
        def relay(narration: Narration) -> None:
            self.pm.hook.rbee_narrate(narration=dataclasses.replace(narration, job_id=job.id))

        return relay

    async def spawn_worker(
        self,
        record: HiveRecord,
        model: str,
        device: str,
        listener: Callable[[Narration], None],
        keep_alive: float | None = None,
        backend: str | None = None,
    ) -> WorkerRef:
        """Ask a hive for a worker (it provisions the model and checks the room first)."""
        body: dict[str, Any] = {"model": model, "device": device}
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        if backend is not None:
            body["backend"] = backend
        async for event, data in hive_client.stream(
            self.http, "POST", f"{record.url}/workers", body
        ):
            if event == "narration":
                listener(Narration.from_json(data))
            elif event == "end":
                info = data["worker"]
                # Jobs that asked at once share one start: and one WorkerRef, so that they
                # share its slots too.
                worker = self.workers.get(info["id"]) or WorkerRef.from_info(record.name, info)
                self.workers[worker.id] = worker
                # Listed at once, not after the hive's next heartbeat (which then refreshes it).
                record.workers = [*(w for w in record.workers if w["id"] != worker.id), info]
                return worker
            elif event == "error":  # e.g. worker_failed, device_too_small: passed on as is
                raise RbeeError.from_dict({"error": data})
        raise HiveError(f"hive {record.name} ended the stream without a worker")

    # -- relaying tokens ----------------------------------------------------------------

    async def _relay(self, job: Job, worker: WorkerRef) -> None:
        if worker.queue.full:
            self.narrate(
                job,
                "queued",
                f"the worker is busy with {worker.queue.running} job(s); "
                f"{worker.queue.waiting} job(s) ahead of this one",
            )
        async with worker.queue.hold():
            job.mark_running(worker.id)
            self.store.save(job)
            self.narrate(job, "prompt_sent", "we've sent the prompt to the worker")
            await self._stream_from(job, worker)
            worker.jobs_served += 1

    async def _stream_from(self, job: Job, worker: WorkerRef) -> None:
        body = job.request.to_json() | {"model": worker.model}  # the catalog's name for it
        for key in ("hive", "device", "backend", "keep_alive"):
            body.pop(key, None)
        try:
            async with self.http.stream("POST", f"{worker.url}/generate", json=body) as response:
                if response.status_code != 200:
                    answer = await response.aread()
                    raise hive_client.error_answer(response, answer, "worker", RbeeError)
                self.narrate(job, "inference_start", "connection to the worker, starting inference")
                async for sse in EventSource(response).aiter_sse():
                    # After [DONE] the worker ends the body; reading on to its end (not
                    # breaking) hands the connection back to the pool for the next job.
                    if sse.data and sse.data != DONE:  # not a keep-alive comment
                        self._forward(job, sse.event, sse.data)
        except httpx.HTTPError as exc:
            self.workers.pop(worker.id, None)
            lost = f"lost the connection to worker {worker.describe()}: {exc!r}"
            raise await self._why_lost(worker, lost) from exc
        if not job.log.closed:
            raise WorkerLost(
                f"worker {worker.describe()} ended the stream without a result",
                hive=worker.hive,
                worker=worker.id,
            )

    async def _why_lost(self, worker: WorkerRef, lost: str) -> RbeeError:
        """A worker's connection dropped: ``worker_lost``, unless its hive does not answer
        either (a killed hive takes its workers with it, a dead machine both): then the
        job failed because of the hive, ``hive_unreachable``, whichever the queen noticed
        first, the broken stream or the missing heartbeats."""
        record = self.hives.hives.get(worker.hive)
        if record is not None:
            try:
                await hive_client.call(self.http, "GET", f"{record.url}/health", timeout=3.0)
            except HiveUnreachable as exc:
                return HiveUnreachable(
                    f"hive {worker.hive} is unreachable ({exc.message}); {lost}",
                    hive=worker.hive,
                    worker=worker.id,
                )
            except RbeeError:
                pass  # it answered, if not with its health: it lives
        return WorkerLost(lost, hive=worker.hive, worker=worker.id)

    def _forward(self, job: Job, event: str, wire: str) -> None:
        """Relay one event of the worker's stream. Parsed once (the job's record keeps its
        text); its JSON goes on to the job's clients as the worker wrote it."""
        data = json.loads(wire)
        if event == EventType.TOKEN:
            job.emit(EventType.TOKEN, data, wire)
        elif event == EventType.END:
            self.narrate(job, "inference_done", "the worker has finished with the inference")
            job.emit(EventType.END, data)
        elif event == EventType.ERROR:
            job.emit(EventType.ERROR, data)
        elif event == EventType.NARRATION:  # e.g. the job waits for room in the batch
            self.pm.hook.rbee_narrate(narration=Narration.from_json(data, job.id))

    # -- shutdown -----------------------------------------------------------------------

    async def stop_hive(self, name: str) -> HiveRecord:
        """Ask a hive to stop (it stops its workers); wait for it if the queen started it."""
        record = self.hives.get(name)
        with contextlib.suppress(RbeeError):
            await hive_client.call(self.http, "POST", f"{record.url}/shutdown")
        process = self._processes.pop(name, None)
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        self.forget_workers(name)
        del self.hives.hives[name]
        return record

    async def close(self) -> None:
        """Cancel running jobs, stop the hives the queen started (they stop their workers),
        close connections. Hives that joined on their own are left running."""
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(
            *(self.stop_hive(n) for n in list(self._processes)), return_exceptions=True
        )
        await self.http.aclose()
        self.store.close()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("background task %s failed: %r", task.get_name(), error, exc_info=error)


def _why_not(job: Job, hives: list[HiveRecord]) -> str:
    """Why no hive offered a place for ``job``, hive by hive."""
    request = job.request
    reasons = []
    for r in hives:
        if request.backend is not None and request.backend not in r.backends:
            have = ", ".join(sorted(r.backends)) or "none"
            reasons.append(f"{r.name}: no backend {request.backend!r} (it has {have})")
        elif request.device:
            have = ", ".join(d["id"] for d in r.devices)
            reasons.append(f"{r.name}: no device {request.device!r} (it has {have})")
        else:
            reasons.append(f"{r.name}: no free worker or device")
    return "; ".join(reasons)


def _devices(record: HiveRecord) -> str:
    parts = []
    for d in record.devices:
        extra = f"{d['cores']} cores, " if d.get("cores") else ""
        parts.append(f"{d['id']} ({d['name']}, {extra}{d['total_memory'] / 2**30:.0f} GiB)")
    return ", ".join(parts)
