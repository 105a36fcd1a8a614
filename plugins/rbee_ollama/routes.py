"""``/api/chat``, ``/api/generate``, ``/api/embed`` and ``/api/embeddings``: each request is
an rbee job (it shows in ``rbee-keeper jobs list``); answers stream as NDJSON, one object a
line, unless ``stream`` is false. A client that leaves a stream cancels its job, since
Ollama's clients never re-attach."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, post
from litestar.response import Stream

from rbee_core.events import EventType
from rbee_core.jobs import Job
from rbee_core.queen_api import QueenApi
from rbee_http.sse import read_json
from rbee_ollama.errors import OllamaError, error_line, status_of
from rbee_ollama.requests import (
    EmbedRequest,
    OllamaRequest,
    parse_chat,
    parse_embed,
    parse_embeddings,
    parse_generate,
)
from rbee_ollama.responses import Answer, embeddings_of, line, nanoseconds
from rbee_openai.tools import CallReader
from rbee_queen.dependencies import QueenApiDep

__all__ = ["GENERATION_ROUTES", "NDJSON"]

NDJSON = "application/x-ndjson"


async def _lines(queen: QueenApi, answer: Answer) -> AsyncIterator[bytes]:
    job = answer.job
    reader = CallReader(answer.tools) if answer.tools is not None else None
    try:
        async for event in job.log.follow():
            if event.type is EventType.TOKEN:
                text = event.data["text"] if reader is None else reader.feed(event.data["text"])
                if text:
                    yield line(answer.part(text))
            elif event.type is EventType.END:
                if reader is not None:
                    held, calls = reader.finish()
                    if held:
                        yield line(answer.part(held))
                    if calls:
                        yield line(answer.part("", calls))
                yield line(answer.final(event.data))
            elif event.type is EventType.ERROR:
                yield line(error_line(event.data.get("message", "the job failed")))
    finally:
        if not job.log.closed:  # the client went away mid-stream
            queen.request_cancel(job.id)


async def _respond(queen: QueenApi, req: OllamaRequest, chat: bool) -> Response[Any] | Stream:
    job = queen.submit(req.job)
    answer = Answer(job, req.model, chat, req.tools)
    headers = {"X-Rbee-Job-Id": job.id}
    if req.stream:
        return Stream(_lines(queen, answer), media_type=NDJSON, headers=headers)
    async for _ in job.log.follow():
        pass
    if job.result.get("code"):  # an error event ended it
        message = job.result.get("message", "the job failed")
        return Response(error_line(message), status_code=status_of(job.result), headers=headers)
    return Response(answer.whole(), headers=headers)


@post("/chat", status_code=200)
async def chat(request: Request[Any, Any, Any], queen: QueenApiDep) -> Response[Any] | Stream:
    return await _respond(queen, parse_chat(await read_json(request), queen.catalog), True)


@post("/generate", status_code=200)
async def generate(request: Request[Any, Any, Any], queen: QueenApiDep) -> Response[Any] | Stream:
    return await _respond(queen, parse_generate(await read_json(request), queen.catalog), False)


async def _embed(queen: QueenApi, req: EmbedRequest) -> tuple[Job, list[list[float]]]:
    """The finished embedding job and its vectors; its error as Ollama's if it failed."""
    job = queen.submit(req.job)
    async for _ in job.log.follow():
        pass
    if job.result.get("code"):
        message = job.result.get("message", "the job failed")
        raise OllamaError(message, status_of(job.result))
    vectors, width = embeddings_of(job)
    if req.dimensions is not None and req.dimensions != width:
        raise OllamaError(
            f"dimensions: {req.model} gives {width}-dimensional embeddings and cannot shorten "
            f"them to {req.dimensions}; leave dimensions out"
        )
    return job, vectors


@post("/embed", status_code=200)
async def embed(request: Request[Any, Any, Any], queen: QueenApiDep) -> Response[Any]:
    req = parse_embed(await read_json(request), queen.catalog)
    job, vectors = await _embed(queen, req)
    body = {
        "model": req.model,
        "embeddings": vectors,
        "total_duration": nanoseconds(job.created_at, job.finished_at),
        "load_duration": nanoseconds(job.created_at, job.started_at),
        "prompt_eval_count": int(job.result.get("prompt_tokens") or 0),
    }
    return Response(body, headers={"X-Rbee-Job-Id": job.id})


@post("/embeddings", status_code=200)
async def embeddings(request: Request[Any, Any, Any], queen: QueenApiDep) -> Response[Any]:
    req = parse_embeddings(await read_json(request), queen.catalog)
    job, vectors = await _embed(queen, req)
    return Response({"embedding": vectors[0]}, headers={"X-Rbee-Job-Id": job.id})


GENERATION_ROUTES = [chat, generate, embed, embeddings]
