"""Running a placed job on its worker (placement took one of its slots for it): send the
prompt, relay the worker's stream into the job's, event by event, as the worker wrote it,
and record what the worker now holds cached in the prefix index.

A job that moves here from a worker lost mid-answer (placement.py) sends the text its
client already has as ``replay``: the worker generates the job again from its start and
sends only what follows (rbee_worker/replay.py), so the job's stream goes on with its next
event id. Only a worker of the same engine (backend, quantization, device type) as the
one that wrote the first tokens may take it; any other ends the job with
``answer_diverged``, naming both."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pluggy
from httpx_sse import EventSource

from rbee_core.errors import AnswerDiverged, HiveUnreachable, RbeeError, WorkerLost, WorkerRetired
from rbee_core.events import DONE, EventType
from rbee_core.jobs import Job
from rbee_core.narration import Narration
from rbee_core.prefix_index import answer_blocks, prompt_blocks
from rbee_queen import hive_client
from rbee_queen.fleet import Fleet, WorkerRef

__all__ = ["Relay", "WorkerGone", "engine_of"]

Say = Callable[[Job, str, str], None]


class WorkerGone(WorkerLost):
    """The job never reached the worker: its hive unloaded it (it answered
    ``worker_retired``, rbee_worker/retire.py) or its process was gone before the job was
    sent. Nothing ran, so the job is placed again (``Placement.run``)."""


def engine_of(worker: WorkerRef) -> dict[str, str]:
    """What decides a job's tokens besides its request and model: a job moved between
    workers that agree on these decodes the same tokens (features/batching.feature)."""
    return {
        "backend": worker.backend,
        "quantization": worker.quantization,
        "device_type": worker.device.split(":")[0].rstrip("0123456789") or worker.device,
    }


def _describe(run: dict[str, Any]) -> str:
    engine = run["engine"]
    return (
        f"{run['worker']} on hive {run['hive']} ({engine['backend'] or '?'} "
        f"{engine['quantization'] or '?'} on {engine['device_type']})"
    )


class Relay:
    def __init__(
        self,
        fleet: Fleet,
        pm: pluggy.PluginManager,
        say: Say,
        running: Callable[[Job], None],
    ) -> None:
        self.fleet = fleet
        self.pm = pm
        self.say = say
        self.running = running  # the job got its slot (the queen records it)

    async def run(self, job: Job, worker: WorkerRef) -> None:
        """Run ``job`` on ``worker``, whose slot placement took for it: from its start, or,
        when an earlier worker sent part of its answer, from where that one was lost."""
        first = _writer(job)
        engine = engine_of(worker)
        run = {
            "worker": worker.id,
            "hive": worker.hive,
            "engine": engine,
            "started_at": time.time(),
            "tokens_before": job.tokens,
        }
        if first is not None and first["engine"] != engine:
            job.runs.append(run | {"error": "answer_diverged"})
            raise AnswerDiverged(
                f"the job's first {job.tokens} tokens came from {_describe(first)}; the worker "
                f"it moved to, {_describe(run)}, runs another engine and would not write the "
                "same answer; run the job again, or keep a worker of the first engine",
                first=first["worker"],
                worker=worker.id,
            )
        job.runs.append(run)
        job.mark_running(worker.id)
        self.running(job)
        self.say(job, "prompt_sent", "we've sent the prompt to the worker")
        await self._stream_from(job, worker)
        worker.jobs_served += 1

    async def _stream_from(self, job: Job, worker: WorkerRef) -> None:
        body = job.request.generation.to_json()  # placement is the queen's alone
        body["model"] = worker.model  # the catalog's name for it
        if job.text:
            body["replay"] = job.text  # what the client has: generated again, not sent
        http = self.fleet.http
        try:
            async with http.stream("POST", f"{worker.url}/generate", json=body) as response:
                if response.status_code != 200:
                    answer = await response.aread()
                    refusal = hive_client.error_answer(response, answer, "worker", RbeeError)
                    if refusal.code == WorkerRetired.code:
                        self.fleet.drop_worker(worker.id)
                        raise WorkerGone(
                            f"worker {worker.describe()} was unloaded before the job reached it",
                            hive=worker.hive,
                            worker=worker.id,
                        )
                    raise refusal
                self.say(job, "inference_start", "connection to the worker, starting inference")
                async for sse in EventSource(response).aiter_sse():
                    # After [DONE] the worker ends the body; reading on to its end (not
                    # breaking) hands the connection back to the pool for the next job.
                    if sse.data and sse.data != DONE:  # not a keep-alive comment
                        self._forward(job, worker, sse.event, sse.data)
        except httpx.ConnectError as exc:  # nothing was sent: the worker stopped before
            self.fleet.drop_worker(worker.id, dead=True)
            raise WorkerGone(
                f"worker {worker.describe()} is gone (no connection: {exc!r}); the job never "
                "reached it",
                hive=worker.hive,
                worker=worker.id,
            ) from exc
        except httpx.HTTPError as exc:
            self.fleet.drop_worker(worker.id, dead=True)
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
        # A split worker needs the hives of its parts too: the first that is gone is why.
        for hive in (worker.hive, *(h for h, _ in worker.parts)):
            record = self.fleet.hives.find(hive)
            if record is None:
                continue
            try:
                await hive_client.call(self.fleet.http, "GET", f"{record.url}/health", timeout=3.0)
            except HiveUnreachable as exc:
                role = "" if hive == worker.hive else ", which holds part of the model,"
                return HiveUnreachable(
                    f"hive {hive}{role} is unreachable ({exc.message}); {lost}",
                    hive=hive,
                    worker=worker.id,
                )
            except RbeeError:
                pass  # it answered, if not with its health: it lives
        return WorkerLost(lost, hive=worker.hive, worker=worker.id)

    def _forward(self, job: Job, worker: WorkerRef, event: str, wire: str) -> None:
        """Relay one event of the worker's stream. Parsed once (the job's record keeps its
        text); its JSON goes on to the job's clients as the worker wrote it."""
        data = json.loads(wire)
        if event == EventType.TOKEN:
            job.emit(EventType.TOKEN, data, wire)
        elif event == EventType.END:
            self.say(job, "inference_done", "the worker has finished with the inference")
            if job.request.seed is not None:
                data["seed"] = job.request.seed  # what makes a sampled answer repeatable
            job.emit(EventType.END, data)
            self._remember(job, worker, data)
        elif event == EventType.ERROR:
            first = _writer(job)
            if data.get("code") == AnswerDiverged.code and first is not None:
                data["message"] = (
                    f"{data.get('message')}; its first tokens came from {_describe(first)}, "
                    f"the rest from {_describe(job.runs[-1])}"
                )
            job.emit(EventType.ERROR, data)
        elif event == EventType.NARRATION:  # e.g. the job waits for room in the batch
            self.pm.hook.rbee_narrate(narration=Narration.from_json(data, job.id))

    def _remember(self, job: Job, worker: WorkerRef, end: dict[str, Any]) -> None:
        """The worker now holds the job's prompt in its cache, and, once it answered, its
        answer too (the next turn of a conversation sends both): record them in the prefix
        index, with the worker's real count of the prompt's tokens."""
        request = job.request
        if request.embed:
            return  # an embedding caches nothing a later prompt reuses
        prompt = prompt_blocks(request.prompt, request.turns)
        chars = sum(b.chars for b in prompt)
        if end.get("outcome", "completed") == "completed":
            blocks = answer_blocks(request.prompt, request.turns, job.text)
        else:
            blocks = prompt
        tokens = end.get("prompt_tokens")
        self.fleet.index.record(
            worker.id, blocks, chars, tokens if isinstance(tokens, int) else None
        )


def _writer(job: Job) -> dict[str, Any] | None:
    """The run that wrote the start of the job's answer, if it has one: the last run that
    began before any token (every later one went on from it)."""
    if not job.tokens:
        return None
    return next((r for r in reversed(job.runs) if r["tokens_before"] == 0), None)
