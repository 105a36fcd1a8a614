"""Event logs as Server-Sent Events: ``id``, ``event`` and JSON ``data`` per event, then a
plain ``data: [DONE]``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.response import ServerSentEventMessage, Stream

from rbee_core.errors import InvalidRequest, RbeeError
from rbee_core.event_log import EventLog
from rbee_core.events import DONE, Event, EventType
from rbee_core.settings import SSE_KEEPALIVE

__all__ = ["background_stream", "event_stream", "last_event_id", "read_json", "sse_response"]


def last_event_id(request: Request[Any, Any, Any]) -> int:
    """The ``Last-Event-ID`` a reconnecting client sent, 0 if none."""
    raw = request.headers.get("last-event-id", "").strip()
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()):  # "²".isdigit() is True, int("²") fails
        raise InvalidRequest(f"Last-Event-ID must be an event id number, got {raw!r}")
    return int(raw)


async def read_json(request: Request[Any, Any, Any]) -> Any:
    """The decoded JSON body, or ``InvalidRequest`` that says what is wrong with it. The
    Guard (rbee_http.auth) has already refused a body not declared ``application/json``."""
    body = await request.body()
    if not body.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return json.loads(body)
    # ValueError covers bad JSON, bad UTF-8 and over-long integers; RecursionError deep nesting.
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


def _encode(event: Event) -> bytes:
    return ServerSentEventMessage(
        data=event.data_json(), event=event.type.value, id=event.id
    ).encode()


async def _messages(
    log: EventLog, after: int, on_close: Callable[[], object] | None, keepalive: float | None
) -> AsyncIterator[bytes]:
    try:
        while True:
            # Every event already in the log goes out in one write (one send, one wake-up of
            # the client), as soon as it is there: nothing waits for more to come.
            ready = log.since(after)
            chunk = b"".join(_encode(event) for event in ready)
            if ready:
                after = ready[-1].id
            if log.closed:
                yield chunk + ServerSentEventMessage(data=DONE).encode()
                break
            if chunk:
                yield chunk
            if not await log.wait(after, keepalive):
                # A comment line: no event, but proxies and clients see a live connection.
                yield ServerSentEventMessage(data=None, comment="keep-alive").encode()
    finally:
        # Runs when the stream ends and when the client disconnects mid-stream.
        if on_close is not None:
            on_close()


class _EventStream(Stream):
    """A Stream that is ``text/event-stream`` whatever its handler declares: Litestar gives
    a handler's media type (JSON, unless it says otherwise) precedence over the response's,
    and a handler that answers JSON or a stream (``"stream": true``) declares JSON."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = self.media_type
        return super().to_asgi_response(*args, **kwargs)


def event_stream(
    messages: AsyncIterator[bytes | str], headers: dict[str, str] | None = None
) -> Stream:
    """An SSE response of ``messages``: a ``str`` is one ``data:`` message, ``bytes`` are
    messages already encoded.

    Litestar's ``ServerSentEvent`` hands the first chunk of every stream to a worker thread
    (``sync_to_thread``): a thread hop, and a GIL hand-over, at the start of each job's
    stream. This encodes the async iterator directly, with the same headers.
    """

    async def encoded() -> AsyncIterator[bytes]:
        async for message in messages:
            yield (
                ServerSentEventMessage(data=message).encode()
                if isinstance(message, str)
                else message
            )

    return _EventStream(
        encoded(),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "Connection": "keep-alive",
            "X-Accel-Buffering": "no",
            **(headers or {}),
        },
    )


def sse_response(
    log: EventLog,
    after: int = 0,
    on_close: Callable[[], object] | None = None,
    keepalive: float | None = None,
) -> Stream:
    """Stream ``log`` from the event after ``after`` until it closes, then ``[DONE]``.

    ``on_close`` runs when the stream is over, whether it finished or the client left. While
    no event comes for ``keepalive`` seconds (by default ``RBEE_SSE_KEEPALIVE``), a
    ``: keep-alive`` comment is sent.
    """
    # Read through its declaration here, where a stream starts, rather than threaded from
    # each program's main through every route that streams (queen, hive and worker alike).
    seconds = SSE_KEEPALIVE.read() if keepalive is None else keepalive
    return event_stream(_messages(log, after, on_close, seconds))


def background_stream(
    fill: Callable[[EventLog], Awaitable[None]],
    keep: Callable[[asyncio.Task[None]], object],
    *,
    what: str,
    unexpected: str = "internal_error",
    cancel_on_close: bool = False,
) -> Stream:
    """Answer, as SSE, the events that ``fill`` appends to a new log in a background task.

    The stream always ends with one terminal event: an ``RbeeError`` becomes an ``error``
    event with its own code, any other exception one with code ``unexpected``, and a
    ``fill`` that returns without a terminal event one saying that ``what`` ended early.
    ``keep`` holds the task (the loop keeps only weak references). The work goes on when
    the client leaves (others may share it), unless ``cancel_on_close``.
    """
    log = EventLog()

    async def run() -> None:
        try:
            await fill(log)
        except RbeeError as exc:
            if not log.closed:
                log.append(EventType.ERROR, exc.to_dict()["error"])
        except Exception as exc:
            if not log.closed:
                log.append(EventType.ERROR, {"code": unexpected, "message": f"{exc!r}"})
        if not log.closed:
            log.append(EventType.ERROR, {"code": unexpected, "message": f"{what} ended early"})

    task = asyncio.create_task(run())
    keep(task)
    return sse_response(log, on_close=task.cancel if cancel_on_close else None)
