"""``POST /v1/responses``. Each request becomes an rbee job (it shows in ``rbee-keeper jobs
list``, its id in the ``X-Rbee-Job-Id`` header and in the response's id); a client that
leaves a stream cancels its job, since OpenAI clients never re-attach.

The router shares the ``/v1`` prefix with rbee_openai's: Litestar merges routers on one
prefix, each keeping its own routes and exception handlers (OpenAI's error shape here too).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, Router, post
from litestar.response import ServerSentEventMessage

from rbee_core.errors import RbeeError
from rbee_core.events import EventType
from rbee_core.jobs import Job
from rbee_core.queen_api import QueenApi
from rbee_http.sse import event_stream, read_json
from rbee_openai.errors import OpenAIError, failed_job, openai_error_handlers
from rbee_queen.dependencies import QueenApiDep
from rbee_responses.events import ResponseEvents
from rbee_responses.objects import ResponseShape
from rbee_responses.requests import ResponsesRequest, parse_responses, responses_param

__all__ = ["responses_router"]


def _sse(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return ServerSentEventMessage(data=data, event=event["type"]).encode()


def _submit(queen: QueenApi, req: ResponsesRequest) -> Job:
    try:
        return queen.submit(req.chat.job)
    except RbeeError as exc:
        # A schema the backend cannot enforce: name the Responses parameter that sent it.
        field = exc.details.get("field")
        if exc.status != 400 or field != "response_format":
            raise
        message = exc.message.replace("response_format", "text.format")
        raise OpenAIError(message, responses_param(field)) from None


async def _stream(queen: QueenApi, job: Job, events: ResponseEvents) -> AsyncIterator[bytes]:
    try:
        for event in events.start():
            yield _sse(event)
        async for logged in job.log.follow():
            if logged.type is EventType.TOKEN:
                batch = events.token(logged.data["text"])
            elif logged.type is EventType.END:
                batch = events.end(logged.data)
            elif logged.type is EventType.ERROR:
                batch = events.fail(logged.data)
            else:
                continue
            if batch:
                yield b"".join(_sse(event) for event in batch)
    finally:
        if not job.log.closed:  # the client went away mid-stream
            queen.request_cancel(job.id)


@post("/responses", status_code=200)
async def create_response(request: Request[Any, Any, Any], queen: QueenApiDep) -> Any:
    req = parse_responses(await read_json(request))
    job = _submit(queen, req)
    events = ResponseEvents(ResponseShape(job, req.echo), req.chat.tools)
    headers = {"X-Rbee-Job-Id": job.id}
    if req.chat.stream:
        return event_stream(_stream(queen, job, events), headers=headers)
    async for _ in job.log.follow():
        pass
    failure = failed_job(job.result, headers)
    if failure is not None:
        return failure
    events.token(job.text)  # the stream's own reading of the answer, all at once
    events.end(job.result)
    return Response(events.final, headers=headers)


responses_router = Router(
    path="/v1", route_handlers=[create_response], exception_handlers=openai_error_handlers
)
