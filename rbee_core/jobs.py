"""Jobs: what a client asks for (``JobRequest``), and the job the queen runs (``Job``)."""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rbee_core.chat_tools import MAX_TOOLS, check_tools
from rbee_core.defaults import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE
from rbee_core.errors import InvalidRequest
from rbee_core.event_log import EventLog
from rbee_core.events import Event, EventType
from rbee_core.response_format import KINDS, ResponseFormat

__all__ = [
    "JOB_BODY_SCHEMA",
    "LIMITS",
    "MAX_CONVERSATION_CHARS",
    "MAX_MESSAGES",
    "MAX_MODEL_CHARS",
    "MAX_NAME_CHARS",
    "MAX_STOP_CHARS",
    "Job",
    "JobRequest",
    "JobState",
    "new_job_id",
]

LIMITS: dict[str, tuple[float, float]] = {
    "max_tokens": (1, 4096),
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),  # exclusive of 0: checked below
    "top_k": (0, 1_000_000),
    "seed": (0, 2**63 - 1),
}
MAX_PROMPT_CHARS = 200_000
MAX_STOP_SEQUENCES = 8
# Every stop string is searched for after each token: a long one costs every token.
MAX_STOP_CHARS = 256
MAX_EMBED_INPUTS = 256
# A conversation is kept with its job (memory, then the job store) and rendered whole by
# the chat template: its size is bounded itself, not only through the 1 MiB body.
MAX_MESSAGES = 1024
MAX_CONVERSATION_CHARS = 512 * 1024
MAX_MODEL_CHARS = 4096  # a model reference: a name, a path, a URL
MAX_NAME_CHARS = 256  # a hive, a device, a backend
ROLES = ("system", "user", "assistant")


def _range(kind: str, name: str, **extra: Any) -> dict[str, Any]:
    low, high = LIMITS[name]
    return {"type": kind, "minimum": low, "maximum": high, **extra}


_TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
_NAME: dict[str, Any] = {**_TEXT, "maxLength": MAX_NAME_CHARS}
_STOP: dict[str, Any] = {**_TEXT, "maxLength": MAX_STOP_CHARS}
JOB_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model"],
    "anyOf": [{"required": ["prompt"]}, {"required": ["embed"]}],
    "additionalProperties": False,
    "properties": {
        "model": {**_TEXT, "maxLength": MAX_MODEL_CHARS},
        "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
        "max_tokens": _range("integer", "max_tokens"),
        "temperature": _range("number", "temperature"),
        "top_p": _range("number", "top_p", exclusiveMinimum=0.0),
        "top_k": _range("integer", "top_k"),
        "seed": _range("integer", "seed"),
        "stop": {
            "oneOf": [_STOP, {"type": "array", "items": _STOP, "maxItems": MAX_STOP_SEQUENCES}]
        },
        "raw": {"type": "boolean"},
        "messages": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_MESSAGES,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"type": "string", "enum": list(ROLES)},
                    # Their contents together: at most MAX_CONVERSATION_CHARS.
                    "content": {"type": "string", "maxLength": MAX_CONVERSATION_CHARS},
                },
            },
        },
        "hive": _NAME,
        "device": _NAME,
        "backend": _NAME,
        "keep_alive": {"oneOf": [{"type": "number", "exclusiveMinimum": 0.0}, {"const": -1}]},
        "timeout": {"type": "number", "exclusiveMinimum": 0.0},
        "embed": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_EMBED_INPUTS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
        },
        "tools": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_TOOLS,
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                    "description": {"type": "string"},
                    "parameters": {"type": "object"},
                },
            },
        },
        "response_format": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"type": "string", "enum": list(KINDS)},
                "json_schema": {
                    "type": "object",
                    "required": ["schema"],
                    "properties": {
                        "name": {"type": "string"},
                        "schema": {"type": "object"},
                        "strict": {"type": "boolean"},
                    },
                },
            },
        },
    },
}
"""``POST /jobs``'s body as JSON Schema, from the limits ``JobRequest.from_json`` enforces
(the queen's OpenAPI document serves it; a test keeps its fields and the dataclass's equal).
"""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


def new_job_id() -> str:
    return f"job-{uuid.uuid4()}"


def _number(payload: dict[str, Any], name: str, *, integer: bool) -> int | float:
    raw = payload[name]
    # bool is an int in Python, but `"max_tokens": true` is a client bug, not 1.
    if isinstance(raw, bool) or not isinstance(raw, int if integer else (int, float)):
        kind = "an integer" if integer else "a number"
        raise InvalidRequest(f"{name} must be {kind}, got {raw!r}", field=name)
    value: int | float = raw
    if not integer and not math.isfinite(value):
        raise InvalidRequest(f"{name} must be a finite number, got {value!r}", field=name)
    low, high = LIMITS[name]
    if not low <= value <= high:
        raise InvalidRequest(
            f"{name} must be between {low:g} and {high:g}, got {value!r}",
            field=name,
            minimum=low,
            maximum=high,
        )
    return value


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A validated inference request. Build it from untrusted JSON with ``from_json``."""

    model: str
    prompt: str
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = 1.0
    top_k: int = 0  # 0 disables top-k
    seed: int | None = None
    stop: tuple[str, ...] = ()
    raw: bool = False  # True sends the prompt as is, without the chat template
    # A whole conversation for chat-template backends; ``prompt`` then holds the last user
    # message, for backends that take plain text.
    messages: tuple[tuple[str, str], ...] = ()
    # Placement: pin the job to a hive and/or a device and/or an inference backend (e.g.
    # "torch", "llamacpp"; by default the model's format picks one); how long its worker
    # may idle (-1: never stopped, never unloaded to make room for another model).
    hive: str | None = None
    device: str | None = None
    backend: str | None = None
    keep_alive: float | None = None
    timeout: float | None = None  # seconds from submission; then the job fails
    # The answer's shape: JSON, or JSON valid against a schema (decoding is constrained).
    response_format: ResponseFormat | None = None
    # Functions offered to a chat model (JSON text of a list of {"name", "description"?,
    # "parameters"?}): its chat template writes them if it knows tools, else they join the
    # system message in the Hermes layout (rbee_core.chat_tools). The calls the answer
    # makes are read by the API that offered them.
    tools: str | None = None
    # An embedding job: a vector for each of these texts (in its end event), no tokens.
    embed: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, payload: Any) -> JobRequest:
        """Validate a decoded JSON body; raise ``InvalidRequest`` naming the first bad field."""
        if not isinstance(payload, dict):
            raise InvalidRequest(
                f"the request body must be a JSON object, got {type(payload).__name__}"
            )
        unknown = sorted(set(payload) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidRequest(
                f"unknown field {unknown[0]!r}; allowed: {', '.join(cls.__dataclass_fields__)}",
                field=unknown[0],
            )
        inputs = payload.get("embed")
        if payload.get("prompt") is None and isinstance(inputs, list) and inputs:
            # An embedding job's prompt is only its label (jobs list): its first text.
            payload = payload | {"prompt": str(inputs[0])[:200]}
        for name in ("model", "prompt"):
            value = payload.get(name)
            if value is None:
                raise InvalidRequest(f"{name} is required", field=name)
            if not isinstance(value, str):
                raise InvalidRequest(f"{name} must be a string, got {value!r}", field=name)
            if not value.strip():
                raise InvalidRequest(f"{name} must not be empty", field=name)
        if len(payload["model"]) > MAX_MODEL_CHARS:
            raise InvalidRequest(
                f"model is too long: {len(payload['model'])} characters, at most {MAX_MODEL_CHARS}",
                field="model",
            )
        if len(payload["prompt"]) > MAX_PROMPT_CHARS:
            raise InvalidRequest(
                f"prompt is too long: {len(payload['prompt'])} characters, "
                f"at most {MAX_PROMPT_CHARS}",
                field="prompt",
            )
        kwargs: dict[str, Any] = {"model": payload["model"].strip(), "prompt": payload["prompt"]}
        for name in ("max_tokens", "top_k", "seed"):
            if payload.get(name) is not None:
                kwargs[name] = _number(payload, name, integer=True)
        for name in ("temperature", "top_p"):
            if payload.get(name) is not None:
                kwargs[name] = float(_number(payload, name, integer=False))
        if kwargs.get("top_p") == 0.0:
            raise InvalidRequest("top_p must be greater than 0 and at most 1", field="top_p")
        if payload.get("stop") is not None:
            kwargs["stop"] = _stop_sequences(payload["stop"])
        if payload.get("raw") is not None:
            if not isinstance(payload["raw"], bool):
                raise InvalidRequest(f"raw must be true or false, got {payload['raw']!r}", "raw")
            kwargs["raw"] = payload["raw"]
        if payload.get("messages") is not None:
            kwargs["messages"] = _messages(payload["messages"])
        for name in ("hive", "device", "backend"):
            value = payload.get(name)
            if value is not None:
                if not isinstance(value, str) or not value.strip():
                    raise InvalidRequest(f"{name} must be a non-empty string", field=name)
                if len(value) > MAX_NAME_CHARS:
                    raise InvalidRequest(
                        f"{name} is too long: {len(value)} characters, at most {MAX_NAME_CHARS}",
                        field=name,
                    )
                kwargs[name] = value.strip()
        if payload.get("timeout") is not None:
            limit = payload["timeout"]
            if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0:
                raise InvalidRequest(
                    f"timeout must be a number of seconds > 0, got {limit!r}", "timeout"
                )
            kwargs["timeout"] = float(limit)
        if payload.get("keep_alive") is not None:
            keep = payload["keep_alive"]
            if (
                isinstance(keep, bool)
                or not isinstance(keep, int | float)
                or not (keep > 0 or keep == -1)
            ):
                raise InvalidRequest(
                    f"keep_alive must be a number of seconds > 0, or -1 to keep the worker "
                    f"loaded, got {keep!r}",
                    "keep_alive",
                )
            kwargs["keep_alive"] = float(keep)
        if payload.get("embed") is not None:
            kwargs["embed"] = _embed_inputs(payload["embed"])
        if payload.get("response_format") is not None:
            shape = ResponseFormat.from_json(payload["response_format"])
            kwargs["response_format"] = shape if shape.constrained else None
        if payload.get("tools") is not None:
            kwargs["tools"] = json.dumps(check_tools(payload["tools"]), separators=(",", ":"))
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["stop"] = list(self.stop)
        data["messages"] = [{"role": r, "content": c} for r, c in self.messages]
        data["embed"] = list(self.embed)
        if self.response_format is not None:
            data["response_format"] = self.response_format.to_json()
        if self.tools is not None:
            data["tools"] = json.loads(self.tools)
        for name in (
            "messages",
            "hive",
            "device",
            "backend",
            "keep_alive",
            "timeout",
            "response_format",
            "tools",
            "embed",
        ):
            if not data[name]:
                del data[name]
        return data


def _messages(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise InvalidRequest("messages must be a non-empty list", field="messages")
    if len(value) > MAX_MESSAGES:
        raise InvalidRequest(
            f"messages has {len(value)} messages, at most {MAX_MESSAGES}",
            field="messages",
            maximum=MAX_MESSAGES,
        )
    out = []
    total = 0
    for i, item in enumerate(value):
        if (
            not isinstance(item, dict)
            or item.get("role") not in ROLES
            or not isinstance(item.get("content"), str)
        ):
            raise InvalidRequest(
                f"messages[{i}] must be an object with a role ({', '.join(ROLES)}) "
                "and a string content",
                field="messages",
            )
        total += len(item["content"])
        if total > MAX_CONVERSATION_CHARS:
            raise InvalidRequest(
                f"messages are too long: more than {MAX_CONVERSATION_CHARS} characters of "
                "content together",
                field="messages",
                maximum=MAX_CONVERSATION_CHARS,
            )
        out.append((item["role"], item["content"]))
    return tuple(out)


def _embed_inputs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_EMBED_INPUTS:
        raise InvalidRequest(
            f"embed must be a list of 1 to {MAX_EMBED_INPUTS} texts", field="embed"
        )
    for i, text in enumerate(value):
        if not isinstance(text, str) or not text:
            raise InvalidRequest(f"embed[{i}] must be a non-empty string", field="embed")
        if len(text) > MAX_PROMPT_CHARS:
            raise InvalidRequest(
                f"embed[{i}] is {len(text)} characters, at most {MAX_PROMPT_CHARS}", "embed"
            )
    return tuple(value)


def _stop_sequences(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items):
        raise InvalidRequest("stop must be a non-empty string or a list of them", field="stop")
    if len(items) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"stop takes at most {MAX_STOP_SEQUENCES} sequences", field="stop")
    for i, stop in enumerate(items):
        if len(stop) > MAX_STOP_CHARS:
            raise InvalidRequest(
                f"{'stop' if isinstance(value, str) else f'stop[{i}]'} is {len(stop)} "
                f"characters, at most {MAX_STOP_CHARS}",
                field="stop",
                maximum=MAX_STOP_CHARS,
            )
    return tuple(items)


_OUTCOMES = (JobState.COMPLETED.value, JobState.CANCELLED.value)


@dataclass
class Job:
    """A job the queen accepted: its request, state, and the ordered log of its events."""

    request: JobRequest
    id: str = field(default_factory=new_job_id)
    state: JobState = JobState.QUEUED
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None
    tokens: int = 0  # token events so far
    cancel_requested: bool = False
    worker: str | None = None
    text: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    log: EventLog = field(default_factory=EventLog)
    # Each time the job was sent to a worker: which, on which hive, its engine (backend,
    # quantization, device type), how many tokens the job had then, and, for a run that
    # was lost, why. With the request (and its seed) it is what runs the job again.
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sse_url(self) -> str:
        return f"/jobs/{self.id}/stream"

    def emit(self, type_: EventType, data: dict[str, Any], wire: str | None = None) -> Event:
        """Append an event to the job's log, keeping state and result text in step.
        ``wire``: ``data`` as JSON, when it came that way (see ``Event.wire``)."""
        if type_ is EventType.END and data.get("outcome", "completed") not in _OUTCOMES:
            raise ValueError(f"an end event's outcome must be one of {_OUTCOMES}: {data!r}")
        event = self.log.append(type_, data, wire)
        if type_ is EventType.TOKEN:
            self.text += data.get("text", "")
            self.tokens += 1
            if self.first_token_at is None:
                self.first_token_at = time.time()
        elif type_ is EventType.END:
            self.result = dict(data)
            self._finish(JobState(data.get("outcome", JobState.COMPLETED)))
        elif type_ is EventType.ERROR:
            self.result = dict(data)
            self._finish(JobState.FAILED)
        return event

    def requeue(self) -> None:
        """Back to waiting for a worker: its worker went away, or the queen restarted."""
        self.state, self.worker, self.started_at = JobState.QUEUED, None, None

    def mark_running(self, worker: str) -> None:
        self.state = JobState.RUNNING
        self.worker = worker
        self.started_at = time.time()

    def _finish(self, state: JobState) -> None:
        self.state = state
        self.finished_at = time.time()

    def summary(self) -> dict[str, Any]:
        """The job's record as ``GET /jobs/{job_id}`` returns it."""
        return {
            "job_id": self.id,
            "state": self.state.value,
            "model": self.request.model,
            "worker": self.worker,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "first_token_at": self.first_token_at,
            "finished_at": self.finished_at,
            "events": len(self.log),
            "tokens": self.tokens,
            "text": self.text,
            "result": self.result or None,
            "request": self.request.to_json(),
            "runs": self.runs,
        }
