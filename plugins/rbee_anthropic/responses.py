"""Messages API responses, built from a job's events: the whole ``message`` object, and
the server-sent events of a streamed one in Anthropic's order (``message_start``, then per
content block ``content_block_start``, ``content_block_delta``..., ``content_block_stop``,
then ``message_delta`` and ``message_stop``)."""

from __future__ import annotations

import json
from typing import Any

from litestar.response import ServerSentEventMessage

from rbee_core.events import JobEnd
from rbee_core.jobs import Job
from rbee_core.messages import FinishReason
from rbee_openai.tools import Tools

__all__ = ["Blocks", "message", "message_id", "sse", "stop_reason", "tool_uses", "usage"]


def sse(kind: str, data: dict[str, Any]) -> bytes:
    """One event as Anthropic streams it: ``event: <type>`` and its JSON ``data``."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return ServerSentEventMessage(data=text, event=kind).encode()


def message_id(job: Job) -> str:
    return "msg_" + job.id.removeprefix("job-").replace("-", "")


def usage(result: dict[str, Any]) -> dict[str, int]:
    """Anthropic's usage: ``input_tokens`` are the prompt tokens the worker computed,
    ``cache_read_input_tokens`` those it took from its cache (the three input counts add
    up to the prompt, as Anthropic's do); rbee's cache fills itself, so nothing is ever
    billed as written to it."""
    end = JobEnd.from_json(result)
    prompt = int(end.prompt_tokens or 0)
    cached = min(int(end.cached_tokens or 0), prompt)
    return {
        "input_tokens": prompt - cached,
        "output_tokens": int(end.completion_tokens or 0),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def stop_reason(result: dict[str, Any], called: bool) -> tuple[str, str | None]:
    """``stop_reason`` and ``stop_sequence`` of a finished job."""
    end = JobEnd.from_json(result)
    if called:
        return "tool_use", None
    if end.finish_reason == FinishReason.LENGTH:
        return "max_tokens", None
    if end.stop_sequence:
        return "stop_sequence", end.stop_sequence
    return "end_turn", None  # the end of sequence; a cancelled job simply stopped


def tool_uses(calls: list[dict[str, Any]] | None, single: bool) -> list[dict[str, Any]]:
    """rbee_openai's tool calls as ``tool_use`` blocks (only the first when parallel tool
    use is disabled: a forced call is one call then, a free answer may still write more)."""
    blocks = [
        {
            "type": "tool_use",
            "id": "toolu_" + call["id"].removeprefix("call_"),
            "name": call["function"]["name"],
            "input": json.loads(call["function"]["arguments"]),
        }
        for call in calls or []
    ]
    return blocks[:1] if single else blocks


def _envelope(job: Job) -> dict[str, Any]:
    return {
        "id": message_id(job),
        "type": "message",
        "role": "assistant",
        "model": job.request.model,
    }


def message(job: Job, tools: Tools | None, single: bool) -> dict[str, Any]:
    """The whole, non-streamed message of a finished job."""
    calls = tool_uses(tools.calls_in(job.text) if tools else None, single)
    content: list[dict[str, Any]] = (
        [] if calls or not job.text else [{"type": "text", "text": job.text}]
    )
    reason, sequence = stop_reason(job.result, bool(calls))
    return _envelope(job) | {
        "content": content + calls,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage(job.result),
    }


class Blocks:
    """The events of one streamed message, in order; content block indexes count up."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.index = 0
        self.text_open = False

    def start(self) -> bytes:
        # The prompt's tokens are known only at the end (the worker counts them): here 0,
        # the count in message_delta's usage, which clients take over message_start's.
        empty = {"input_tokens": 0, "output_tokens": 0}
        start = _envelope(self.job) | {
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": empty,
        }
        return sse("message_start", {"type": "message_start", "message": start}) + sse(
            "ping", {"type": "ping"}
        )

    def text(self, text: str) -> bytes:
        opened = b""
        if not self.text_open:
            self.text_open = True
            block = {"type": "text", "text": ""}
            opened = self._start_block(block)
        delta = {"type": "text_delta", "text": text}
        return opened + self._delta(delta)

    def _start_block(self, block: dict[str, Any]) -> bytes:
        event = {"type": "content_block_start", "index": self.index, "content_block": block}
        return sse("content_block_start", event)

    def _delta(self, delta: dict[str, Any]) -> bytes:
        event = {"type": "content_block_delta", "index": self.index, "delta": delta}
        return sse("content_block_delta", event)

    def _stop_block(self) -> bytes:
        stop = sse("content_block_stop", {"type": "content_block_stop", "index": self.index})
        self.index += 1
        return stop

    def finish(self, calls: list[dict[str, Any]], result: dict[str, Any]) -> bytes:
        """Close the text block, stream each ``tool_use`` block (its input as one
        ``input_json_delta``), then ``message_delta`` and ``message_stop``; ``result`` is
        the job's end event's data."""
        out = self._stop_block() if self.text_open else b""
        for call in calls:
            block = {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}}
            partial = json.dumps(call["input"], ensure_ascii=False)
            out += self._start_block(block)
            out += self._delta({"type": "input_json_delta", "partial_json": partial})
            out += self._stop_block()
        reason, sequence = stop_reason(result, bool(calls))
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": usage(result),
        }
        return out + sse("message_delta", delta) + sse("message_stop", {"type": "message_stop"})
