"""The /v1 routes. Each request becomes an rbee job (it shows in ``rbee-keeper jobs list``);
a client that leaves a stream cancels its job, since OpenAI clients never re-attach."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, Router, get, post

from rbee_core.events import DONE, EventType
from rbee_core.queen_api import QueenApi
from rbee_http.sse import event_stream, read_json
from rbee_openai.errors import OpenAIError, error_body, failed_job, openai_error_handlers
from rbee_openai.requests import OpenAIRequest, parse_chat, parse_completion, parse_embeddings
from rbee_openai.responses import Shape, embedding_list, finish_reason
from rbee_openai.tools import CallReader
from rbee_queen.dependencies import QueenApiDep

__all__ = ["openai_router"]


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@get("/models")
async def list_models(queen: QueenApiDep) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "rbee"}
            for name in queen.catalog.known()
        ],
    }


async def _stream(queen: QueenApiDep, shape: Shape, req: OpenAIRequest) -> AsyncIterator[str]:
    job = shape.job
    reader = CallReader(req.tools) if req.tools is not None else None
    try:
        if shape.chat:
            yield _dumps(shape.chunk(role=True))
        async for event in job.log.follow():
            if event.type is EventType.TOKEN:
                text = event.data["text"] if reader is None else reader.feed(event.data["text"])
                if text:
                    yield _dumps(shape.chunk(text))
            elif event.type is EventType.END:
                finish = finish_reason(event.data)
                if reader is not None:
                    held, calls = reader.finish()
                    if held:
                        yield _dumps(shape.chunk(held))
                    if calls:
                        yield _dumps(shape.chunk(calls=calls))
                        finish = "tool_calls"
                yield _dumps(shape.chunk(finish=finish))
                if req.include_usage:
                    yield _dumps(shape.usage_chunk(event.data))
            elif event.type is EventType.ERROR:
                message = event.data.get("message", "the job failed")
                yield _dumps(error_body(message, "server_error", None, event.data.get("code")))
        yield DONE
    finally:
        if not job.log.closed:  # the client went away mid-stream
            queen.request_cancel(job.id)


async def _respond(queen: QueenApi, req: OpenAIRequest, kind: str) -> Any:
    job = queen.submit(req.job)
    shape = Shape(kind, job, req.tools)
    headers = {"X-Rbee-Job-Id": job.id}
    if req.stream:
        return event_stream(_stream(queen, shape, req), headers=headers)
    async for _ in job.log.follow():
        pass
    failure = failed_job(job.result, headers)
    if failure is not None:
        return failure
    return Response(shape.complete(), headers=headers)


@post("/chat/completions", status_code=200)
async def chat_completions(request: Request[Any, Any, Any], queen: QueenApiDep) -> Any:
    return await _respond(queen, parse_chat(await read_json(request)), "chat")


@post("/completions", status_code=200)
async def completions(request: Request[Any, Any, Any], queen: QueenApiDep) -> Any:
    return await _respond(queen, parse_completion(await read_json(request)), "text")


@post("/embeddings", status_code=200)
async def embeddings(request: Request[Any, Any, Any], queen: QueenApiDep) -> Any:
    req = parse_embeddings(await read_json(request))
    job = queen.submit(req.job)
    headers = {"X-Rbee-Job-Id": job.id}
    async for _ in job.log.follow():
        pass
    if job.result.get("code"):  # an error event ended it
        status = 400 if job.result.get("code") == "invalid_request" else 503
        kind = "invalid_request_error" if status == 400 else "server_error"
        message = job.result.get("message", "the job failed")
        field = job.result.get("field")
        param = "input" if field == "embed" else field
        body = error_body(message, kind, param, job.result.get("code"))
        return Response(body, status_code=status, headers=headers)
    answer, width = embedding_list(job.request.model, job.result, req.base64)
    if req.dimensions is not None and req.dimensions != width:
        raise OpenAIError(
            f"dimensions: {job.request.model} gives {width}-dimensional embeddings and cannot "
            f"shorten them to {req.dimensions}; leave dimensions out",
            "dimensions",
        )
    return Response(answer, headers=headers)


openai_router = Router(
    path="/v1",
    route_handlers=[list_models, chat_completions, completions, embeddings],
    exception_handlers=openai_error_handlers,
)
