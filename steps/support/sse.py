"""Reading a job's stream as a client does, keeping both the parsed events and the raw lines."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Stream", "follow_stream", "read_stream"]


@dataclass
class Stream:
    events: list[dict[str, Any]] = field(default_factory=list)  # {id, event, data, at}
    lines: list[str] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    @property
    def text(self) -> str:
        return "".join(e["data"]["text"] for e in self.of_type("token"))

    @property
    def narration(self) -> list[dict[str, Any]]:
        return [e["data"] for e in self.of_type("narration")]


def read_stream(
    url: str,
    headers: dict[str, str] | None = None,
    timeout: float = 300,
    until: Callable[[Stream], bool] | None = None,
    into: Stream | None = None,
) -> Stream:
    """Read an SSE stream to its end (or until ``until`` says enough, for a stream that
    never ends), parsing events by hand so the wire format is checked; into ``into``, as
    they come, if given."""
    stream = into if into is not None else Stream()
    current: dict[str, Any] = {}
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=timeout)) as r:
        assert r.status_code == 200, f"stream answered {r.status_code}: {r.read()!r}"
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            stream.lines.append(line)
            if line == "":
                if "data" in current:
                    if current["data"] != "[DONE]":
                        current["data"] = json.loads(current["data"])
                    current["at"] = time.monotonic()
                    stream.events.append(current)
                    if until is not None and until(stream):
                        break
                current = {}
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "id":
                current["id"] = int(value)
            elif key in ("event", "data"):
                current[key] = value
    if stream.events and stream.events[-1]["data"] == "[DONE]":
        stream.events.pop()  # kept in lines; events holds only the job's own events
    return stream


def follow_stream(
    url: str,
    headers: dict[str, str] | None = None,
    patience: float = 300,
    stream: Stream | None = None,
) -> Stream:
    """Read a job's stream to its end as a patient client does: whenever the connection
    drops or the queen is down, connect again with ``Last-Event-ID`` (every 0.5 s, for at
    most ``patience`` seconds in all). ``stream`` (if given) is filled as events come, so
    another thread may watch it; each reconnection adds a "reconnect" line."""
    stream = stream if stream is not None else Stream()
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        asked = dict(headers or {})
        if stream.events:
            asked["Last-Event-ID"] = str(stream.events[-1]["id"])
        with contextlib.suppress(httpx.HTTPError, AssertionError):
            read_stream(url, asked, timeout=60, into=stream)
        if "data: [DONE]" in stream.lines:
            return stream
        stream.lines.append("reconnect")
        time.sleep(0.5)
    raise AssertionError(f"the stream at {url} did not end within {patience:.0f} s")
