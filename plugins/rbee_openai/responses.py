"""OpenAI response objects, built from a job's events."""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np

from rbee_core.events import JobEnd
from rbee_core.jobs import Job
from rbee_core.messages import FinishReason
from rbee_openai.tools import Tools

__all__ = ["Shape", "embedding_list", "finish_reason", "usage"]


def finish_reason(result: dict[str, Any]) -> str:
    """OpenAI knows ``stop`` and ``length``; a cancelled job simply stopped."""
    length = JobEnd.from_json(result).finish_reason == FinishReason.LENGTH
    return "length" if length else "stop"


def usage(result: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage object; ``prompt_tokens_details.cached_tokens`` are the prompt tokens
    the worker took from its cache (0 from a worker that does not say)."""
    prompt = int(result.get("prompt_tokens", 0))
    completion = int(result.get("completion_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(result.get("cached_tokens") or 0)},
    }


class Shape:
    """The objects of one endpoint: ``chat`` (chat.completion[.chunk]) or ``text``
    (text_completion), for one job."""

    def __init__(self, kind: str, job: Job, tools: Tools | None = None) -> None:
        self.chat = kind == "chat"
        self.job = job
        self.tools = tools
        self.id = ("chatcmpl-" if self.chat else "cmpl-") + job.id.removeprefix("job-")
        self.created = int(job.created_at or time.time())

    def _envelope(self, choices: list[dict[str, Any]], chunk: bool) -> dict[str, Any]:
        if self.chat:
            obj = "chat.completion.chunk" if chunk else "chat.completion"
        else:
            obj = "text_completion"
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.job.request.model,
            "choices": choices,
        }

    def chunk(
        self,
        text: str | None = None,
        *,
        role: bool = False,
        finish: str | None = None,
        calls: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if text is not None:
                delta["content"] = text
            if calls:  # each call whole, in one delta: clients join deltas by index
                delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(calls)]
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        return self._envelope([choice], chunk=True)

    def usage_chunk(self, result: dict[str, Any]) -> dict[str, Any]:
        return self._envelope([], chunk=True) | {"usage": usage(result)}

    def complete(self) -> dict[str, Any]:
        """The whole, non-streamed response of a finished job."""
        result = self.job.result
        if self.chat:
            calls = self.tools.calls_in(self.job.text) if self.tools else None
            message: dict[str, Any] = {"role": "assistant", "content": self.job.text}
            if calls:
                message = {"role": "assistant", "content": None, "tool_calls": calls}
            choice: dict[str, Any] = {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if calls else finish_reason(result),
            }
        else:
            choice = {
                "index": 0,
                "text": self.job.text,
                "logprobs": None,
                "finish_reason": finish_reason(result),
            }
        return self._envelope([choice], chunk=False) | {"usage": usage(result)}


def embedding_list(
    model: str, result: dict[str, Any], as_base64: bool
) -> tuple[dict[str, Any], int]:
    """The ``/v1/embeddings`` answer from an embedding job's end, and its dimensions."""
    end = JobEnd.from_json(result)
    raw = base64.b64decode(end.embeddings or "")
    width = end.dimensions or 1
    rows = np.frombuffer(raw, dtype="<f4").reshape(-1, width)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(row.tobytes()).decode() if as_base64 else row.tolist(),
        }
        for i, row in enumerate(rows)
    ]
    tokens = int(end.prompt_tokens or 0)
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return body, width
