"""A response as the Responses API streams it, event by event, from a job's events.

The order is OpenAI's: ``response.created``, ``response.in_progress``; for the answer's
text ``response.output_item.added`` (the message), ``response.content_part.added``,
``response.output_text.delta`` for each piece, ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done``; for each function call
``response.output_item.added``, ``response.function_call_arguments.delta`` and ``.done``,
``response.output_item.done``; last ``response.completed`` (``response.incomplete`` when
cut at max_output_tokens, ``response.failed`` when the job failed or was cancelled).
Every event carries its ``type`` and a ``sequence_number`` counting from 0.

With tools an answer may turn out to be calls: rbee_openai's ``CallReader`` holds what
could be a call, so the message item opens with the first text that cannot be one; a
forced call shows no text at all. A call comes whole at the end (one arguments delta), as
in rbee_openai's chat stream. The same sequence, run over the finished job's text, gives
the non-streamed response's output, so both answer alike.
"""

from __future__ import annotations

from typing import Any

from rbee_openai.tools import CallReader, Tools
from rbee_responses.objects import ResponseShape, end_status

__all__ = ["ResponseEvents"]

TERMINAL = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "cancelled": "response.failed",
    "failed": "response.failed",
}


class ResponseEvents:
    """The events of one response; ``output`` holds its finished items."""

    def __init__(self, shape: ResponseShape, tools: Tools | None) -> None:
        self.shape = shape
        self.reader = CallReader(tools) if tools is not None else None
        self.output: list[dict[str, Any]] = []
        self.final: dict[str, Any] | None = None  # the response object, once it ended
        self._text: str | None = None  # the open message's text; None while none is open
        self._sequence = 0

    def _event(self, type_: str, **data: Any) -> dict[str, Any]:
        event = {"type": type_, **data, "sequence_number": self._sequence}
        self._sequence += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        response = self.shape.response("in_progress", [])
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.shape.message_id, "output_index": len(self.output)}

    def _show(self, text: str) -> list[dict[str, Any]]:
        events = []
        if self._text is None:  # the message opens with its first text
            self._text = ""
            events += [
                self._event(
                    "response.output_item.added",
                    output_index=len(self.output),
                    item=self.shape.message(None, "in_progress"),
                ),
                self._event(
                    "response.content_part.added",
                    **self._where(),
                    content_index=0,
                    part=self.shape.text_part(""),
                ),
            ]
        if text:
            self._text += text
            events.append(
                self._event(
                    "response.output_text.delta",
                    **self._where(),
                    content_index=0,
                    delta=text,
                    logprobs=[],
                )
            )
        return events

    def token(self, text: str) -> list[dict[str, Any]]:
        """The events a token's text makes (none while it may be part of a call)."""
        shown = self.reader.feed(text) if self.reader is not None else text
        return self._show(shown) if shown else []

    def _close(self, status: str) -> list[dict[str, Any]]:
        if self._text is None:
            return []
        text, where = self._text, self._where()
        item = self.shape.message(text, status)
        self.output.append(item)
        self._text = None
        part = self.shape.text_part(text)
        return [
            self._event(
                "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
            ),
            self._event("response.content_part.done", **where, content_index=0, part=part),
            self._event("response.output_item.done", output_index=where["output_index"], item=item),
        ]

    def _call(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        index = len(self.output)
        item = self.shape.call(call, index, "completed")
        where = {"item_id": item["id"], "output_index": index}
        self.output.append(item)
        return [
            self._event(
                "response.output_item.added",
                output_index=index,
                item=self.shape.call(call, index, "in_progress"),
            ),
            self._event("response.function_call_arguments.delta", **where, delta=item["arguments"]),
            self._event(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _finish(
        self, status: str, result: dict[str, Any] | None, error: dict[str, Any] | None
    ) -> dict[str, Any]:
        self.final = self.shape.response(status, self.output, result, error)
        return self._event(TERMINAL[status], response=self.final)

    def end(self, result: dict[str, Any]) -> list[dict[str, Any]]:
        """The events of the job's end: what was held, the calls, the terminal event."""
        status = end_status(result)
        events: list[dict[str, Any]] = []
        calls = None
        if self.reader is not None:
            held, calls = self.reader.finish()
            if held:
                events += self._show(held)
        if not calls and self._text is None:
            events += self._show("")  # an empty answer is still a message
        events += self._close("completed" if status == "completed" else "incomplete")
        for call in calls or ():
            events += self._call(call)
        error = None
        if status == "cancelled":
            error = {"code": "server_error", "message": f"job {self.shape.job.id} was cancelled"}
        events.append(self._finish(status, result, error))
        return events

    def fail(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The events of the job's failure (its error event's data)."""
        message = str(data.get("message") or "the job failed")
        if data.get("code"):
            message = f"{message} ({data['code']})"
        events = self._close("incomplete")
        events.append(self._finish("failed", None, {"code": "server_error", "message": message}))
        return events
