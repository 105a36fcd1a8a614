"""The events of a job's stream.

A job's stream is an ordered log of events. Each has an ``id`` that increases within the job
(so a client can resume with ``Last-Event-ID``), a ``type`` and a JSON-able ``data`` payload.
The SSE wire format adds a final plain ``data: [DONE]`` line after the terminal event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["DONE", "Event", "EventType", "JobEnd"]

DONE = "[DONE]"
"""The data of the last SSE message of every stream."""


class EventType(StrEnum):
    """What an event carries. ``END`` and ``ERROR`` are terminal: nothing follows them."""

    NARRATION = "narration"  # {"actor", "action", "message"}
    TOKEN = "token"  # {"text"}
    END = "end"  # JobEnd: {"outcome", "finish_reason", "prompt_tokens", ...}
    ERROR = "error"  # {"code", "message"}

    @property
    def terminal(self) -> bool:
        return self in (EventType.END, EventType.ERROR)


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a job's event log."""

    id: int
    type: EventType
    data: dict[str, Any]
    wire: str | None = None  # ``data`` as JSON already, when it arrived that way

    def data_json(self) -> str:
        """The payload as compact JSON, as it goes on the wire. An event relayed from another
        stream keeps that stream's JSON, so relaying never encodes it again."""
        if self.wire is not None:
            return self.wire
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class JobEnd:
    """The data of a job's ``end`` event, as the worker sends it and the queen relays it
    (the queen's own for a job cancelled before its worker answered). ``None`` counts are
    left out of the JSON."""

    outcome: str = "completed"  # or "cancelled" (a JobState's value)
    finish_reason: str | None = None  # a FinishReason's value
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Of prompt_tokens, those the worker took from its cache (a prefix an earlier job left).
    cached_tokens: int | None = None
    # The stop string (one of the request's ``stop``) that ended it; None at the end of
    # sequence, at max_tokens, or from a worker that does not say.
    stop_sequence: str | None = None
    # An embedding job's answer: its vectors as little-endian float32, row after row, in
    # base64 (a quarter of the JSON numbers' size; OpenAI's own base64 encoding), and
    # how many numbers make one row.
    embeddings: str | None = None
    dimensions: int | None = None
    # A sampled job's seed (the client's, or the one the queen gave it at submission):
    # with it, the job's answer can be had again, token for token. Set by the queen.
    seed: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobEnd:
        return cls(
            outcome=str(data.get("outcome", "completed")),
            finish_reason=data.get("finish_reason"),
            prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"),
            cached_tokens=data.get("cached_tokens"),
            stop_sequence=data.get("stop_sequence"),
            embeddings=data.get("embeddings"),
            dimensions=data.get("dimensions"),
            seed=data.get("seed"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if getattr(self, name) is not None
        }
