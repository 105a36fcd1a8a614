"""``POST /v1/messages`` and ``/v1/messages/count_tokens``. Each request becomes an rbee job
(it shows in ``rbee-keeper jobs list``); a client that leaves a stream cancels its job,
since Anthropic's clients never re-attach. The router shares the ``/v1`` prefix with
rbee_openai's and others' (Litestar joins routers' routes by path), with its own error
handlers, so errors on these routes come in Anthropic's shape.

The ``anthropic-version`` and ``anthropic-beta`` headers the clients send are accepted and
change nothing: rbee serves one version of the API, without Anthropic's betas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, Router, post

from rbee_anthropic.errors import anthropic_error_handlers, error_body, job_error
from rbee_anthropic.requests import MessagesRequest, parse_count_tokens, parse_messages
from rbee_anthropic.responses import Blocks, message, sse, tool_uses
from rbee_core.events import EventType
from rbee_core.queen_api import QueenApi
from rbee_http.auth import ERROR_BODY_OPT
from rbee_http.sse import event_stream, read_json
from rbee_openai.tools import CallReader
from rbee_queen.dependencies import QueenApiDep

__all__ = ["anthropic_router"]


async def _stream(queen: QueenApi, blocks: Blocks, req: MessagesRequest) -> AsyncIterator[bytes]:
    job = blocks.job
    reader = CallReader(req.tools) if req.tools is not None else None
    try:
        yield blocks.start()
        async for event in job.log.follow():
            if event.type is EventType.TOKEN:
                text = event.data["text"] if reader is None else reader.feed(event.data["text"])
                if text:
                    yield blocks.text(text)
            elif event.type is EventType.END:
                calls = None
                if reader is not None:
                    held, calls = reader.finish()
                    if held:
                        yield blocks.text(held)
                yield blocks.finish(tool_uses(calls, req.single_call), event.data)
            elif event.type is EventType.ERROR:
                body, _ = job_error(event.data)
                yield sse("error", body)
    finally:
        if not job.log.closed:  # the client went away mid-stream
            queen.request_cancel(job.id)


def _headers(job_id: str) -> dict[str, str]:
    # request-id: what Anthropic's clients show as a response's ``_request_id``.
    return {"X-Rbee-Job-Id": job_id, "request-id": job_id}


@post("/messages", status_code=200)
async def create_message(request: Request[Any, Any, Any], queen: QueenApiDep) -> Any:
    req = parse_messages(await read_json(request))
    job = queen.submit(req.job)
    if req.stream:
        return event_stream(_stream(queen, Blocks(job), req), headers=_headers(job.id))
    async for _ in job.log.follow():
        pass
    if job.result.get("code"):  # an error event ended it
        body, status = job_error(job.result)
        return Response(body, status_code=status, headers=_headers(job.id))
    return Response(message(job, req.tools, req.single_call), headers=_headers(job.id))


@post("/messages/count_tokens", status_code=200)
async def count_tokens(request: Request[Any, Any, Any], queen: QueenApiDep) -> Any:
    """The prompt's tokens as the model's worker counts them (its tokenizer and chat
    template), from a one-token job."""
    job = queen.submit(parse_count_tokens(await read_json(request)))
    async for _ in job.log.follow():
        pass
    if job.result.get("code"):
        body, status = job_error(job.result)
        return Response(body, status_code=status, headers=_headers(job.id))
    tokens = int(job.result.get("prompt_tokens") or 0)
    return Response({"input_tokens": tokens}, headers=_headers(job.id))


def _refusal(status: int, _code: str, message: str) -> dict[str, Any]:
    """The Guard's refusals (a missing key: 401, authentication_error) in this API's shape."""
    return error_body(message, status)


anthropic_router = Router(
    path="/v1",
    route_handlers=[create_message, count_tokens],
    exception_handlers=anthropic_error_handlers,
    opt={ERROR_BODY_OPT: _refusal},
)
