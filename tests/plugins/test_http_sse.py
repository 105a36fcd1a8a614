"""rbee_http.sse helpers: reading a JSON body and the Last-Event-ID header, and the SSE stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.datastructures import Headers
from litestar.testing import TestClient

from rbee_core.errors import InvalidRequest
from rbee_core.event_log import EventLog
from rbee_core.events import EventType
from rbee_http.sse import _messages, event_stream, last_event_id, read_json


class FakeRequest:
    """What the helpers use of a Litestar request: headers decoded as the server does
    (Latin-1, from the raw ASGI bytes) and the body."""

    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"") -> None:
        self.headers = Headers.from_scope({"type": "http", "headers": headers or []})
        self._body = body

    async def body(self) -> bytes:
        return self._body


def event_id(raw: bytes | None) -> int:
    headers = [] if raw is None else [(b"last-event-id", raw)]
    return last_event_id(FakeRequest(headers))  # type: ignore[arg-type]


def body_of(raw: bytes) -> Any:
    return asyncio.run(read_json(FakeRequest(body=raw)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 0), (b"", 0), (b"  ", 0), (b"0", 0), (b"7", 7), (b" 12 ", 12)]
)
def test_last_event_id(raw: bytes | None, expected: int) -> None:
    assert event_id(raw) == expected


@pytest.mark.parametrize("raw", [b"abc", b"-1", b"1.5", b"0x10", b"3a"])
def test_last_event_id_not_a_number(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="Last-Event-ID must be an event id number"):
        event_id(raw)


@pytest.mark.parametrize("raw", [b"\xb2", b"\xb9", b"1\xb3"])
def test_last_event_id_with_latin1_superscript_digits(raw: bytes) -> None:
    # The server decodes header bytes as Latin-1: b"\xb2" arrives as "²", which
    # str.isdigit() accepts but int() rejects. It must be a 400, not a ValueError (500).
    with pytest.raises(InvalidRequest, match="Last-Event-ID must be an event id number"):
        event_id(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b"[1, 2]", [1, 2]),
        (b"  null ", None),
        ('{"t": "é"}'.encode(), {"t": "é"}),
        (b'\xef\xbb\xbf{"bom": true}', {"bom": True}),
    ],
)
def test_read_json(raw: bytes, expected: Any) -> None:
    assert body_of(raw) == expected


@pytest.mark.parametrize("raw", [b"", b" \r\n\t"])
def test_read_json_empty(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="empty"):
        body_of(raw)


@pytest.mark.parametrize("raw", [b"{", b"nope", b"\xff", b'{"a": 1} trailing'])
def test_read_json_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        body_of(raw)


def test_read_json_too_deeply_nested_is_a_bad_request() -> None:
    # json.loads raises RecursionError here, which is not a JSONDecodeError.
    with pytest.raises(InvalidRequest):
        body_of(b"[" * 100_000)


def test_read_json_integer_too_long_is_a_bad_request() -> None:
    # json.loads raises a plain ValueError (int max str digits), not a JSONDecodeError.
    with pytest.raises(InvalidRequest):
        body_of(b'{"max_tokens": ' + b"1" * 5000 + b"}")


def parse(chunks: list[bytes]) -> list[dict[str, str]]:
    """The SSE messages in written chunks: their fields, as a client reads them."""
    messages = []
    for block in b"".join(chunks).decode().split("\r\n\r\n"):
        if not block:
            continue
        fields: dict[str, str] = {}
        for line in block.split("\r\n"):
            key, _, value = line.partition(": ")
            fields[key] = value
        messages.append(fields)
    return messages


def test_messages_replay_a_closed_log_then_done_and_call_on_close() -> None:
    log = EventLog()
    log.append(EventType.TOKEN, {"text": "a"})
    log.append(EventType.TOKEN, {"text": "b"})
    log.append(EventType.END, {"outcome": "completed"})
    closed: list[bool] = []

    async def collect(after: int) -> list[bytes]:
        return [m async for m in _messages(log, after, lambda: closed.append(True), None)]

    chunks = asyncio.run(collect(0))
    assert len(chunks) == 1  # all of it was there: one write
    assert parse(chunks) == [
        {"id": "1", "event": "token", "data": json.dumps({"text": "a"}, separators=(",", ":"))},
        {"id": "2", "event": "token", "data": '{"text":"b"}'},
        {"id": "3", "event": "end", "data": '{"outcome":"completed"}'},
        {"data": "[DONE]"},
    ]
    assert closed == [True]
    assert [m.get("id") for m in parse(asyncio.run(collect(2)))] == ["3", None]
    assert closed == [True, True]


def test_messages_go_out_as_they_come_not_held_for_more() -> None:
    async def scenario() -> list[bytes]:
        log = EventLog()
        log.append(EventType.TOKEN, {"text": "a"})
        stream = _messages(log, 0, None, None)
        first = await anext(stream)  # sent at once, although the job goes on
        log.append(EventType.TOKEN, {"text": "b"})
        second = await anext(stream)
        log.append(EventType.END, {"outcome": "completed"})
        return [first, second, *[m async for m in stream]]

    chunks = asyncio.run(scenario())
    assert [[m.get("id") for m in parse([c])] for c in chunks] == [["1"], ["2"], ["3", None]]


def test_messages_call_on_close_when_the_client_leaves() -> None:
    async def scenario() -> list[bool]:
        log = EventLog()
        log.append(EventType.TOKEN, {"text": "a"})
        closed: list[bool] = []
        stream = _messages(log, 0, lambda: closed.append(True), None)
        first = await stream.__anext__()
        assert parse([first])[0]["id"] == "1"
        await stream.aclose()  # the client disconnected mid-stream
        return closed

    assert asyncio.run(scenario()) == [True]


def test_an_idle_stream_sends_keep_alive_comments_until_the_next_event() -> None:
    async def scenario() -> list[bytes]:
        log = EventLog()
        stream = _messages(log, 0, None, 0.05)
        first = await anext(stream)  # nothing happens for 0.05 s: a comment
        log.append(EventType.END, {"outcome": "completed"})
        rest = [m async for m in stream]
        return [first, *rest]

    chunks = asyncio.run(scenario())
    assert chunks[0] == b": keep-alive\r\n\r\n"
    assert parse(chunks[1:]) == [
        {"id": "1", "event": "end", "data": '{"outcome":"completed"}'},
        {"data": "[DONE]"},
    ]


def test_an_event_stream_is_text_event_stream_from_a_handler_that_may_answer_json() -> None:
    async def one() -> AsyncIterator[bytes | str]:
        yield "x"

    @post("/either", status_code=200)
    async def either(request: Request[Any, Any, Any]) -> Any:
        body = await read_json(request)
        return event_stream(one()) if body.get("stream") else {"answer": "x"}

    with TestClient(Litestar([either])) as client:
        streamed = client.post("/either", json={"stream": True})
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert streamed.text == "data: x\r\n\r\n"
        answered = client.post("/either", json={})
        assert answered.headers["content-type"] == "application/json"
