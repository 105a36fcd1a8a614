"""OpenAI request bodies to rbee job requests.

Parameters rbee honours map onto the job; parameters it cannot honour are refused by name
rather than silently ignored, so a client never believes it got what it did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rbee_core.errors import InvalidRequest
from rbee_core.job_request import MAX_MESSAGES, JobRequest
from rbee_openai.errors import OpenAIError
from rbee_openai.tools import Tools, parse_tools, render_messages

__all__ = [
    "DEFAULT_CHAT_MAX_TOKENS",
    "EmbeddingRequest",
    "OpenAIRequest",
    "parse_chat",
    "parse_completion",
    "parse_embeddings",
]

DEFAULT_CHAT_MAX_TOKENS = 512
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's own default for /v1/completions

SAMPLING = ("temperature", "top_p", "seed", "stop")
# Accepted and ignored: they change nothing about the answer.
IGNORED = ("user", "metadata", "store", "service_tier")
# Accepted when they ask for the default behaviour only.
DEFAULT_ONLY: dict[str, Any] = {
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "logprobs": False,
    "echo": False,
}


@dataclass(frozen=True, slots=True)
class OpenAIRequest:
    job: JobRequest
    stream: bool
    include_usage: bool
    tools: Tools | None = None  # the functions offered, when the answer may be calls


def _common(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OpenAIError("the request body must be a JSON object")
    known = {
        "model",
        "stream",
        "stream_options",
        "n",
        "max_tokens",
        *SAMPLING,
        *IGNORED,
        *DEFAULT_ONLY,
        *allowed,
    }
    for name in body:
        if name not in known:
            raise OpenAIError(f"unsupported parameter: {name!r} is not supported by rbee", name)
    for name, default in DEFAULT_ONLY.items():
        if body.get(name) not in (None, default):
            raise OpenAIError(f"{name}={body[name]!r} is not supported by rbee", name)
    if body.get("n") not in (None, 1):
        raise OpenAIError(f"n must be 1: rbee returns one choice, got n={body['n']!r}", "n")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIError("model is required: a model name from GET /v1/models", "model")
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise OpenAIError(f"stream must be true or false, got {stream!r}", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise OpenAIError("stream_options must be an object", "stream_options")
    return {"model": model, "stream": stream, "include_usage": bool(options.get("include_usage"))}


def _job(fields: dict[str, Any], body: dict[str, Any], default_max: int) -> JobRequest:
    max_param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    payload = {name: body[name] for name in SAMPLING if body.get(name) is not None}
    limit = body.get(max_param)
    payload["max_tokens"] = default_max if limit is None else limit
    payload |= fields
    try:
        return JobRequest.from_json(payload)
    except InvalidRequest as exc:
        param = max_param if exc.field == "max_tokens" else exc.field
        message = exc.message.replace("max_tokens", param) if param else exc.message
        raise OpenAIError(message, param) from None


def _text(content: Any, index: int) -> str:
    """Message content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    raise OpenAIError(
        f"messages[{index}].content must be a string or a list of text parts "
        "(rbee serves text models)",
        "messages",
    )


ROLES = ("system", "developer", "user", "assistant", "tool")
CHAT_FIELDS = (
    "messages",
    "max_completion_tokens",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
)


def _message(message: Any, i: int) -> dict[str, Any]:
    """One message of a conversation, checked; tool calls and results kept for rendering."""
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise OpenAIError(f"messages[{i}] needs a role of {', '.join(ROLES)}", "messages")
    role = "system" if message["role"] == "developer" else message["role"]
    calls = message.get("tool_calls") if role == "assistant" else None
    if calls is not None:
        if not isinstance(calls, list) or not all(_is_call(c) for c in calls):
            raise OpenAIError(
                f"messages[{i}].tool_calls must be a list of "
                '{"id", "type": "function", "function": {"name", "arguments"}}',
                "messages",
            )
        content = message.get("content")
        text = "" if content is None else _text(content, i)
        return {"role": role, "content": text, "tool_calls": calls}
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise OpenAIError(
            f"messages[{i}] is a tool result: it needs the tool_call_id it answers", "messages"
        )
    return {"role": role, "content": _text(message.get("content"), i)}


def _is_call(call: Any) -> bool:
    function = call.get("function") if isinstance(call, dict) else None
    return (
        isinstance(function, dict)
        and isinstance(function.get("name"), str)
        and isinstance(function.get("arguments", ""), str | dict)
    )


def parse_chat(body: Any) -> OpenAIRequest:
    common = _common(body, CHAT_FIELDS)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise OpenAIError("messages must be a non-empty list", "messages")
    if len(messages) > MAX_MESSAGES:  # before any is looked at (the job checks it again)
        raise OpenAIError(
            f"messages has {len(messages)} messages, at most {MAX_MESSAGES}", "messages"
        )
    checked = [_message(m, i) for i, m in enumerate(messages)]
    tools = parse_tools(body)
    conversation = render_messages(checked)
    users = [m["content"] for m in conversation if m["role"] == "user"]
    fields: dict[str, Any] = {
        "model": common["model"],
        # For backends without a chat template: the last thing the user said.
        "prompt": users[-1] if users else conversation[-1]["content"],
        "messages": conversation,
    }
    if tools is not None and tools.offered:
        fields["tools"] = tools.job_tools()
    if body.get("response_format") is not None:
        fields["response_format"] = body["response_format"]
    if tools is not None and tools.forced:
        if "response_format" in fields:
            raise OpenAIError(
                "response_format cannot be combined with a required tool call: the answer "
                "is the call",
                "response_format",
            )
        fields["response_format"] = tools.response_format()
    job = _job(fields, body, DEFAULT_CHAT_MAX_TOKENS)
    return OpenAIRequest(job, common["stream"], common["include_usage"], tools)


def parse_completion(body: Any) -> OpenAIRequest:
    common = _common(body, ("prompt", "suffix"))
    if body.get("suffix"):
        raise OpenAIError("suffix is not supported by rbee", "suffix")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise OpenAIError("prompt must be a string (one prompt per request)", "prompt")
    fields = {"model": common["model"], "prompt": prompt, "raw": True}
    job = _job(fields, body, DEFAULT_COMPLETION_MAX_TOKENS)
    return OpenAIRequest(job, common["stream"], common["include_usage"])


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    job: JobRequest
    base64: bool  # encoding_format "base64": the vectors as OpenAI's base64 float32
    dimensions: int | None


def parse_embeddings(body: Any) -> EmbeddingRequest:
    if not isinstance(body, dict):
        raise OpenAIError("the request body must be a JSON object")
    for name in body:
        if name not in ("model", "input", "encoding_format", "dimensions", "user"):
            raise OpenAIError(f"unsupported parameter: {name!r} is not supported by rbee", name)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIError("model is required: a model name from GET /v1/models", "model")
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
        raise OpenAIError(
            "input must be a string or a list of strings (rbee embeds text, not token ids)",
            "input",
        )
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise OpenAIError(
            f'encoding_format must be "float" or "base64", got {encoding!r}', "encoding_format"
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise OpenAIError(
            f"dimensions must be a whole number >= 1, got {dimensions!r}", "dimensions"
        )
    try:
        job = JobRequest.from_json({"model": model, "embed": inputs})
    except InvalidRequest as exc:
        message = exc.message.replace("embed", "input")
        raise OpenAIError(message, "input" if exc.field == "embed" else exc.field) from None
    return EmbeddingRequest(job, encoding == "base64", dimensions)
