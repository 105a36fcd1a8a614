"""The queen's work: accept a job, place it on a worker, relay the worker's stream."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pluggy
from httpx_sse import EventSource

from rbee_core.errors import RbeeError
from rbee_core.events import DONE, EventType
from rbee_core.job_registry import JobRegistry
from rbee_core.jobs import Job, JobRequest
from rbee_core.narration import Narration
from rbee_core.plugins import model_catalog
from rbee_hive.local import LocalHive
from rbee_hive.store import ModelStore
from rbee_hive.workers import WorkerProcess
from rbee_queen.sinks import JobStreamSink

__all__ = ["Queen"]

ACTOR = "queen-rbee"
log = logging.getLogger("rbee.queen")


class NoPlacement(RbeeError):
    code = "no_placement"
    status = 503


class WorkerLost(RbeeError):
    code = "worker_lost"
    status = 502


def _fail(job: Job, code: str, message: str) -> None:
    """End the job with an error event, unless it has already ended."""
    if not job.log.closed:
        job.emit(EventType.ERROR, {"code": code, "message": message})


class Queen:
    """Owns the job registry, the hive(s) and the in-flight job tasks."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.jobs = JobRegistry()
        self.catalog = model_catalog(pm)
        self.hive: LocalHive | None = None
        self._hive_lock = asyncio.Lock()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        # Streams can be idle for minutes while a worker loads: no read timeout.
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
        pm.register(JobStreamSink(self.jobs), name="queen-job-stream")

    def narrate(self, job: Job, action: str, message: str, actor: str = ACTOR) -> None:
        self.pm.hook.rbee_narrate(narration=Narration(actor, action, message, job.id))

    def submit(self, request: JobRequest) -> Job:
        """Accept a job (the model must resolve) and start running it in the background."""
        self.catalog.resolve(request.model)
        job = self.jobs.create(request)
        self.pm.hook.rbee_job_submitted(job=job)
        self._tasks[job.id] = asyncio.create_task(self._run(job), name=job.id)
        self._tasks[job.id].add_done_callback(lambda _: self._tasks.pop(job.id, None))
        return job

    def keep(self, task: asyncio.Task[None]) -> None:
        """Hold a background task until it ends (the loop keeps only weak references);
        the queen cancels it at shutdown."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
            worker = await self._place(job)
            await self._relay(job, worker)
        except RbeeError as exc:
            _fail(job, exc.code, exc.message)
        except asyncio.CancelledError:
            if not job.cancel_requested:
                _fail(job, "queen_shutdown", "the queen shut down before the job finished")
                raise
            if not job.log.closed:
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
            _fail(job, "internal_error", f"{type(exc).__name__}: {exc}")
        finally:
            _fail(job, "internal_error", "the job ended without a result")
            self.pm.hook.rbee_job_finished(job=job)

    async def local_hive(self, job: Job | None = None) -> LocalHive:
        """The hive of this machine, added on first use (narrated into ``job`` if given)."""
        async with self._hive_lock:
            if self.hive is None:
                if job is not None:
                    self.narrate(job, "hive_none", "No hives found.")
                    self.narrate(job, "hive_add", "Adding local pc to hive catalog.")
                store = ModelStore(self.catalog)
                self.hive = await asyncio.to_thread(LocalHive, store)
                if job is not None:
                    self.narrate(
                        job,
                        "hive_ready",
                        f"the bee hive at localhost has: {self.hive.describe_devices()}",
                    )
            return self.hive

    def _relay_narration(self, job: Job) -> Callable[[Narration], None]:
        def relay(narration: Narration) -> None:
            self.pm.hook.rbee_narrate(narration=replace(narration, job_id=job.id))

        return relay

    async def _place(self, job: Job) -> WorkerProcess:
        hive = await self.local_hive(job)
        name, _ = hive.store.name_of(job.request.model)
        chosen = self.pm.hook.rbee_schedule(job=job, candidates=hive.candidates(name))
        if chosen is None:
            raise NoPlacement(f"no hive can run model {name}: no worker or device is free")
        if chosen.worker_id is not None and chosen.worker_id in hive.workers:
            worker = hive.workers[chosen.worker_id]
            self.narrate(job, "worker_reuse", f"the worker {worker.id} already has {name} loaded")
            return worker
        self.narrate(
            job,
            "schedule",
            f"picked {chosen.device} on {chosen.hive} for our inference job "
            "(other placement policies: docs/scheduling.md)",
        )
        local = await hive.store.ensure(job.request.model, self._relay_narration(job))
        self.narrate(job, "worker_wake", f"waking up the worker for {name} on {chosen.device}")
        self.narrate(job, "worker_wait", "we're now waiting for the worker bee to wake up")
        worker = await hive.start_worker(local, chosen.device, self._relay_narration(job))
        self.narrate(job, "worker_ready", f"the worker bee is awake: {worker.describe()}")
        return worker

    async def _relay(self, job: Job, worker: WorkerProcess) -> None:
        worker.waiting += 1
        try:
            if worker.lock.locked():
                self.narrate(
                    job,
                    "queued",
                    f"the worker is busy; {worker.waiting - 1} job(s) ahead of this one",
                )
            async with worker.lock:
                job.mark_running(worker.id)
                self.narrate(job, "prompt_sent", "we've sent the prompt to the worker")
                await self._stream_from(job, worker)
                worker.jobs_served += 1
        finally:
            worker.waiting -= 1

    async def _stream_from(self, job: Job, worker: WorkerProcess) -> None:
        try:
            body = job.request.to_json() | {"model": worker.model}  # the catalog's name for it
            async with self.http.stream("POST", f"{worker.url}/generate", json=body) as response:
                if response.status_code != 200:
                    body = json.loads(await response.aread())
                    error = body.get("error", {})
                    raise RbeeError(error.get("message", f"worker answered {response.status_code}"))
                self.narrate(job, "inference_start", "connection to the worker, starting inference")
                async for sse in EventSource(response).aiter_sse():
                    if sse.data == DONE:
                        break
                    self._forward(job, sse.event, json.loads(sse.data))
        except httpx.HTTPError as exc:
            raise WorkerLost(f"lost the connection to worker {worker.describe()}: {exc!r}") from exc
        if not job.log.closed:
            raise WorkerLost(f"worker {worker.describe()} ended the stream without a result")

    def _forward(self, job: Job, event: str, data: dict[str, Any]) -> None:
        if event == EventType.TOKEN:
            job.emit(EventType.TOKEN, data)
        elif event == EventType.END:
            self.narrate(job, "inference_done", "the worker has finished with the inference")
            job.emit(EventType.END, data)
        elif event == EventType.ERROR:
            job.emit(EventType.ERROR, data)

    async def close(self) -> None:
        """Cancel running jobs, stop every worker we started, close connections."""
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.hive is not None:
            await self.hive.stop_all()
        await self.http.aclose()
