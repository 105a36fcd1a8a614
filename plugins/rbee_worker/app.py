"""The worker's HTTP API: health, generation streams (batched by the model), retiring (its
hive unloads it to make room, see retire.py), shutdown."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from litestar import Litestar, Request, get, post
from litestar.datastructures import State
from litestar.response import Stream

from rbee_core.backends import GenerationParams
from rbee_core.errors import InvalidRequest
from rbee_core.event_log import EventLog
from rbee_core.events import EventType, JobEnd
from rbee_core.job_request import Generation
from rbee_core.jobs import JobState
from rbee_core.messages import FinishReason
from rbee_core.narration import Narration
from rbee_http.auth import authorized
from rbee_http.errors import error_handlers
from rbee_http.server import MAX_BODY, guard_for
from rbee_http.sse import background_stream, read_json
from rbee_worker.replay import Replay, replay_from
from rbee_worker.runner import Runner

__all__ = ["create_app"]

ACTOR = "llm-worker-rbee"


@get("/health")
async def health(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    if not authorized(request):  # public: alive, and nothing more, without the key
        return {"status": "ok"}
    runner: Runner = state.runner
    return {
        "status": "ready",
        "model": state.model,
        "backend": state.backend,
        "quantization": runner.quantization,
        "device": runner.model.device,
        "busy": runner.busy,
        "slots": runner.slots,
        "running": runner.running,
        "waiting": runner.waiting,
        "jobs_served": runner.jobs_served,
        "retired": runner.retired,
        "pid": os.getpid(),
    }


async def _embed_into(log: EventLog, runner: Runner, request: Generation) -> None:
    result = await runner.embed(list(request.embed))
    vectors = np.ascontiguousarray(result.vectors, dtype="<f4")
    end = JobEnd(
        outcome=JobState.COMPLETED,
        finish_reason=FinishReason.STOP,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=0,
        embeddings=base64.b64encode(vectors.tobytes()).decode(),
        dimensions=int(vectors.shape[1]),
    )
    log.append(EventType.END, end.to_json())


async def _generate_into(
    log: EventLog, runner: Runner, request: Generation, replay: Replay | None = None
) -> None:
    if request.embed:
        await _embed_into(log, runner, request)
        return
    async for chunk in runner.generate(request.prompt, GenerationParams.from_request(request)):
        if replay is not None:  # the client has the start of this answer: check, skip it
            chunk = dataclasses.replace(chunk, text=replay.after(chunk.text))
            if chunk.finish_reason not in (None, FinishReason.CANCELLED):
                replay.ended()
        if chunk.notice:
            log.append(
                EventType.NARRATION,
                Narration(ACTOR, "waiting", chunk.notice).to_json(),
            )
        if chunk.text:
            log.append(EventType.TOKEN, {"text": chunk.text})
        if chunk.finish_reason is not None:
            cancelled = chunk.finish_reason == FinishReason.CANCELLED
            end = JobEnd(
                outcome=JobState.CANCELLED if cancelled else JobState.COMPLETED,
                finish_reason=chunk.finish_reason,
                prompt_tokens=chunk.prompt_tokens,
                completion_tokens=chunk.completion_tokens,
                cached_tokens=chunk.cached_tokens,
                stop_sequence=chunk.stop_sequence,
            )
            log.append(EventType.END, end.to_json())


@post("/generate", status_code=200)
async def generate(request: Request[Any, Any, Any], state: State) -> Stream:
    """Stream one generation. The body is a job's generation part (rbee_core.job_request),
    as the queen forwards it."""
    body = await read_json(request)
    replay = replay_from(body)  # the queen's, for a job its lost worker had begun
    job = Generation.from_json(body)
    if job.model != state.model:
        raise InvalidRequest(
            f"this worker serves {state.model!r}, not {job.model!r}", field="model"
        )

    # Counted as busy from here (no await until the generation's task exists), so the hive
    # cannot retire this worker under the job; released when the task ends, even one
    # cancelled before it ran.
    release = state.runner.claim()

    def keep(task: asyncio.Task[None]) -> None:
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
        task.add_done_callback(lambda _: release())

    # A backend's refusal (too long for its cache...) ends the stream with its own code; a
    # client that goes away mid-stream stops the generation (within one token).
    return background_stream(
        lambda log: _generate_into(log, state.runner, job, replay),
        keep,
        what="the generation",
        unexpected="inference_failed",
        cancel_on_close=True,
    )


@post("/retire", status_code=200)
async def retire(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """``{"min_idle": seconds}``: stop taking jobs if none ran, waited or was accepted for
    that long (the hive then stops this worker). Answers ``{"retired": bool, "why"?}``."""
    body = await read_json(request)
    min_idle = body.get("min_idle", 0.0) if isinstance(body, dict) else None
    if isinstance(min_idle, bool) or not isinstance(min_idle, int | float) or min_idle < 0:
        raise InvalidRequest("min_idle must be a number of seconds >= 0", field="min_idle")
    runner: Runner = state.runner
    why = runner.retire(float(min_idle))
    return {"retired": True} if why is None else {"retired": False, "why": why}


@post("/shutdown", status_code=202)
async def shutdown(state: State) -> dict[str, str]:
    state.stop()
    return {"status": "shutting down"}


def create_app(
    runner: Runner, model: str, backend: str, stop: Callable[[], None], host: str = "127.0.0.1"
) -> Litestar:
    state = State(
        {"runner": runner, "model": model, "backend": backend, "stop": stop, "tasks": set()}
    )
    return Litestar(
        route_handlers=[health, generate, retire, shutdown],
        state=state,
        exception_handlers=error_handlers,
        middleware=guard_for(host),
        request_max_body_size=MAX_BODY,
        logging_config=None,  # the program's own (basicConfig): no queue thread per line
        on_shutdown=[lambda: runner.close()],
    )
