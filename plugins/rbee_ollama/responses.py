"""Ollama's answer objects, built from a job's events: the lines of a streamed answer and
the final one with its counts and durations."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rbee_core.events import JobEnd
from rbee_core.jobs import Job
from rbee_core.messages import FinishReason
from rbee_openai.tools import Tools

__all__ = ["Answer", "embeddings_of", "line", "nanoseconds", "ollama_calls", "timestamp"]

NS = 1_000_000_000


def timestamp(at: float | None = None) -> str:
    """RFC 3339 in UTC, as Ollama's ``created_at``."""
    moment = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def line(obj: dict[str, Any]) -> bytes:
    """One line of NDJSON."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def ollama_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI ``tool_calls`` (arguments as JSON text) as Ollama's (arguments an object)."""
    return [
        {
            "function": {
                "index": i,
                "name": call["function"]["name"],
                "arguments": json.loads(call["function"]["arguments"]),
            }
        }
        for i, call in enumerate(calls)
    ]


def nanoseconds(start: float | None, end: float | None) -> int:
    return int(max(0.0, end - start) * NS) if start is not None and end is not None else 0


class Answer:
    """The objects of one ``/api/chat`` (``chat``) or ``/api/generate`` answer."""

    def __init__(self, job: Job, model: str, chat: bool, tools: Tools | None = None) -> None:
        self.job = job
        self.model = model  # the name the client sent
        self.chat = chat
        self.tools = tools

    def _head(self) -> dict[str, Any]:
        return {"model": self.model, "created_at": timestamp()}

    def part(self, text: str, calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A streamed piece of the answer (``done: false``)."""
        if not self.chat:
            return self._head() | {"response": text, "done": False}
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = ollama_calls(calls)
        return self._head() | {"message": message, "done": False}

    def final(self, result: dict[str, Any], text: str = "", calls: Any = None) -> dict[str, Any]:
        """The last object: ``done: true``, why it ended, the token counts and the durations
        in nanoseconds, from the queen's clock (load: until a worker took the job; prompt:
        until its first token; eval: the rest)."""
        end = JobEnd.from_json(result)
        job = self.job
        finished = job.finished_at
        reason = "length" if end.finish_reason == FinishReason.LENGTH else "stop"
        body = self._head()
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if calls:
                message["tool_calls"] = ollama_calls(calls)
            body["message"] = message
        else:
            body["response"] = text
        return body | {
            "done": True,
            "done_reason": reason,
            "total_duration": nanoseconds(job.created_at, finished),
            "load_duration": nanoseconds(job.created_at, job.started_at),
            "prompt_eval_count": int(end.prompt_tokens or 0),
            "prompt_eval_duration": nanoseconds(job.started_at, job.first_token_at),
            "eval_count": int(end.completion_tokens or 0),
            "eval_duration": nanoseconds(job.first_token_at or job.started_at, finished),
        }

    def whole(self) -> dict[str, Any]:
        """The non-streamed answer of a finished job."""
        calls = self.tools.calls_in(self.job.text) if self.tools and self.chat else None
        return self.final(self.job.result, "" if calls else self.job.text, calls)


def embeddings_of(job: Job) -> tuple[list[list[float]], int]:
    """An embedding job's vectors (one per input) and how many numbers each has."""
    end = JobEnd.from_json(job.result)
    width = end.dimensions or 1
    raw = base64.b64decode(end.embeddings or "")
    rows = np.frombuffer(raw, dtype="<f4").reshape(-1, width)
    return [row.tolist() for row in rows], width
