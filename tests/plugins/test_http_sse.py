"""rbee_http.sse helpers: reading a JSON body and the Last-Event-ID header, and the SSE stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from litestar.datastructures import Headers

from rbee_core.errors import InvalidRequest
from rbee_core.event_log import EventLog
from rbee_core.events import EventType
from rbee_http.sse import _messages, last_event_id, read_json


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


def test_messages_replay_a_closed_log_then_done_and_call_on_close() -> None:
    log = EventLog()
    log.append(EventType.TOKEN, {"text": "a"})
    log.append(EventType.TOKEN, {"text": "b"})
    log.append(EventType.END, {"outcome": "completed"})
    closed: list[bool] = []

    async def collect(after: int) -> list[Any]:
        return [m async for m in _messages(log, after, lambda: closed.append(True), None)]

    messages = asyncio.run(collect(0))
    assert [(m.id, m.event, m.data) for m in messages] == [
        (1, "token", json.dumps({"text": "a"}, separators=(",", ":"))),
        (2, "token", '{"text":"b"}'),
        (3, "end", '{"outcome":"completed"}'),
        (None, None, "[DONE]"),
    ]
    assert closed == [True]
    assert [m.id for m in asyncio.run(collect(2))] == [3, None]
    assert closed == [True, True]


def test_messages_call_on_close_when_the_client_leaves() -> None:
    async def scenario() -> list[bool]:
        log = EventLog()
        log.append(EventType.TOKEN, {"text": "a"})
        closed: list[bool] = []
        stream = _messages(log, 0, lambda: closed.append(True), None)
        first = await stream.__anext__()
        assert first.id == 1
        await stream.aclose()  # the client disconnected mid-stream
        return closed

    assert asyncio.run(scenario()) == [True]


def test_an_idle_stream_sends_keep_alive_comments_until_the_next_event() -> None:
    async def scenario() -> list[Any]:
        log = EventLog()
        stream = _messages(log, 0, None, 0.05)
        first = await anext(stream)  # nothing happens for 0.05 s: a comment
        log.append(EventType.END, {"outcome": "completed"})
        rest = [m async for m in stream]
        return [first, *rest]

    messages = asyncio.run(scenario())
    assert messages[0].comment == "keep-alive" and messages[0].data is None
    assert [(m.event, m.data) for m in messages[1:]] == [
        ("end", '{"outcome":"completed"}'),
        (None, "[DONE]"),
    ]
