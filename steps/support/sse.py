"""Reading a job's stream as a client does, keeping both the parsed events and the raw lines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Stream", "read_stream"]


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
) -> Stream:
    """Read an SSE stream to its end (or until ``until`` says enough, for a stream that
    never ends), parsing events by hand so the wire format is checked."""
    stream = Stream()
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
