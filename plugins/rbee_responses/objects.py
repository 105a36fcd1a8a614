"""Response objects (``object: "response"``) and their output items, built from a job.

The ids are the job's: ``resp_<uuid>`` answers job ``job-<uuid>`` (``rbee-keeper jobs
show``, ``GET /jobs/job-<uuid>``), its message ``msg_<uuid>``, its calls ``fc_<uuid>_<n>``.
"""

from __future__ import annotations

import time
from typing import Any

from rbee_core.events import JobEnd
from rbee_core.jobs import Job
from rbee_core.messages import FinishReason

__all__ = ["ResponseShape", "end_status", "usage"]


def usage(result: dict[str, Any]) -> dict[str, Any]:
    """The Responses usage object of a job's end. ``cached_tokens``: prompt tokens the
    worker took from its cache; rbee's workers do not report cache writes apart."""
    end = JobEnd.from_json(result)
    prompt, output = int(end.prompt_tokens or 0), int(end.completion_tokens or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(end.cached_tokens or 0),
            "cache_write_tokens": 0,
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + output,
    }


def end_status(result: dict[str, Any]) -> str:
    """A finished job's response status: cut at max_output_tokens is "incomplete"; a job
    cancelled (``rbee-keeper jobs cancel``, its deadline) is "cancelled"."""
    end = JobEnd.from_json(result)
    if end.outcome == "cancelled":
        return "cancelled"
    return "incomplete" if end.finish_reason == FinishReason.LENGTH else "completed"


class ResponseShape:
    """The response object and items of one job, with the request fields it repeats."""

    def __init__(self, job: Job, echo: dict[str, Any]) -> None:
        self.job = job
        self.echo = echo
        uid = job.id.removeprefix("job-")
        self.id = f"resp_{uid}"
        self.message_id = f"msg_{uid}"
        self._call_prefix = f"fc_{uid}_"

    def call_id(self, index: int) -> str:
        return f"{self._call_prefix}{index}"

    def message(self, text: str | None, status: str) -> dict[str, Any]:
        """The assistant's message item; ``text`` None while no part is open."""
        content = [] if text is None else [self.text_part(text)]
        return {
            "type": "message",
            "id": self.message_id,
            "status": status,
            "role": "assistant",
            "content": content,
        }

    @staticmethod
    def text_part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def call(self, call: dict[str, Any], index: int, status: str) -> dict[str, Any]:
        """A function_call item from a chat ``tool_calls`` entry (rbee_openai's)."""
        function = call["function"]
        arguments = "" if status == "in_progress" else function["arguments"]
        return {
            "type": "function_call",
            "id": self.call_id(index),
            "call_id": call["id"],
            "name": function["name"],
            "arguments": arguments,
            "status": status,
        }

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The response object, ``status`` "in_progress" until ``result`` (the job's end)."""
        request = self.job.request
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        finished = status != "in_progress"
        return {
            "id": self.id,
            "object": "response",
            "created_at": int(self.job.created_at),
            "status": status,
            "background": False,
            "error": error,
            "incomplete_details": incomplete,
            "model": request.model,
            "output": output,
            "previous_response_id": None,
            "reasoning": None,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "truncation": "disabled",
            "usage": usage(result) if result is not None else None,
            "completed_at": int(self.job.finished_at or time.time()) if finished else None,
            **self.echo,
        }
