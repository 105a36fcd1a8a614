"""OpenAI request bodies to rbee job requests.

Parameters rbee honours map onto the job; parameters it cannot honour are refused by name
rather than silently ignored, so a client never believes it got what it did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rbee_core.errors import InvalidRequest
from rbee_core.jobs import JobRequest
from rbee_openai.errors import OpenAIError

__all__ = ["OpenAIRequest", "parse_chat", "parse_completion"]

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
    "parallel_tool_calls": True,
}


@dataclass(frozen=True, slots=True)
class OpenAIRequest:
    job: JobRequest
    stream: bool
    include_usage: bool


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


def parse_chat(body: Any) -> OpenAIRequest:
    common = _common(body, ("messages", "max_completion_tokens", "response_format"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise OpenAIError("messages must be a non-empty list", "messages")
    conversation = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
        ):
            raise OpenAIError(
                f"messages[{i}] needs a role of system, developer, user or assistant", "messages"
            )
        role = "system" if message["role"] == "developer" else message["role"]
        conversation.append({"role": role, "content": _text(message.get("content"), i)})
    users = [m["content"] for m in conversation if m["role"] == "user"]
    fields = {
        "model": common["model"],
        # For backends without a chat template: the last thing the user said.
        "prompt": users[-1] if users else conversation[-1]["content"],
        "messages": conversation,
    }
    if body.get("response_format") is not None:
        fields["response_format"] = body["response_format"]
    job = _job(fields, body, DEFAULT_CHAT_MAX_TOKENS)
    return OpenAIRequest(job, common["stream"], common["include_usage"])


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
