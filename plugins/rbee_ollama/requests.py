"""Ollama request bodies (``/api/chat``, ``/api/generate``, ``/api/embed``,
``/api/embeddings``) to rbee job requests.

Fields rbee honours map onto the job; fields it cannot honour are refused by name with a
400 rather than silently dropped. The tools and their calls are rbee_openai's: Ollama's tool
format is OpenAI's function format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rbee_core.errors import InvalidRequest
from rbee_core.job_request import MAX_MESSAGES, JobRequest
from rbee_core.models import ModelCatalog
from rbee_ollama.errors import OllamaError
from rbee_ollama.names import to_rbee
from rbee_ollama.options import UNBOUNDED, parse_format, parse_keep_alive, parse_options
from rbee_openai.tools import Tools, parse_tools, render_messages

__all__ = [
    "EmbedRequest",
    "OllamaRequest",
    "parse_chat",
    "parse_embed",
    "parse_embeddings",
    "parse_generate",
]

COMMON = ("model", "stream", "options", "format", "keep_alive", "think", "logprobs")
CHAT = (*COMMON, "messages", "tools", "top_logprobs")
GENERATE = (*COMMON, "prompt", "suffix", "system", "template", "context", "raw", "images")
GENERATE_ALSO = ("top_logprobs", "width", "height", "steps")
MESSAGE_KEYS = ("role", "content", "images", "tool_calls", "tool_name", "thinking")
ROLES = ("system", "user", "assistant", "tool")
# Field names of the job, as the Ollama request calls them (for refusals).
_OLLAMA_NAME = {"max_tokens": "options.num_predict", "response_format": "format"}


@dataclass(frozen=True, slots=True)
class OllamaRequest:
    job: JobRequest
    model: str  # as the client named it: Ollama answers with the name it was sent
    stream: bool
    tools: Tools | None = None  # the functions offered, when the answer may be calls


def _checked(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OllamaError("the request body must be a JSON object")
    unknown = sorted(name for name in body if name not in allowed)
    if unknown:
        raise OllamaError(
            f"unsupported field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
        )
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise OllamaError('"model" is required')  # Ollama's own words
    if body.get("think") not in (None, False):
        # Ollama answers a model that cannot think the same way.
        raise OllamaError(f'"{model}" does not support thinking: rbee serves no thinking mode')
    if body.get("logprobs") not in (None, False) or body.get("top_logprobs") not in (None, 0):
        raise OllamaError("logprobs and top_logprobs are not supported by rbee")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise OllamaError(f"stream must be true or false, got {stream!r}")
    return body


def _streams(body: dict[str, Any]) -> bool:
    """Ollama streams unless told not to (``stream`` absent or null streams)."""
    return body.get("stream") is not False


def _job(body: dict[str, Any], fields: dict[str, Any], catalog: ModelCatalog) -> JobRequest:
    payload: dict[str, Any] = {"max_tokens": UNBOUNDED, **parse_options(body.get("options"))}
    payload["model"] = to_rbee(body["model"], catalog)
    keep_alive = parse_keep_alive(body.get("keep_alive"))
    if keep_alive is not None:
        payload["keep_alive"] = keep_alive
    response_format = parse_format(body.get("format"))
    if response_format is not None:
        payload["response_format"] = response_format
    payload |= fields
    try:
        return JobRequest.from_json(payload)
    except InvalidRequest as exc:
        name = exc.field or ""
        ollama = _OLLAMA_NAME.get(name, f"options.{name}" if name in payload else name)
        message = exc.message.replace(name, ollama, 1) if name else exc.message
        raise OllamaError(message) from None


def _no_images(images: Any, where: str) -> None:
    if images:
        raise OllamaError(
            f"{where}images: rbee serves text models and cannot read images; send text only"
        )


def _message(message: Any, i: int) -> dict[str, Any]:
    """One message, checked, in the shape rbee_openai's ``render_messages`` renders."""
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise OllamaError(f"messages[{i}] needs a role of {', '.join(ROLES)}")
    unknown = sorted(name for name in message if name not in MESSAGE_KEYS)
    if unknown:
        raise OllamaError(f"messages[{i}]: unsupported field: {', '.join(unknown)}")
    _no_images(message.get("images"), f"messages[{i}].")
    content = message.get("content") or ""
    if not isinstance(content, str):
        raise OllamaError(f"messages[{i}].content must be a string")
    # "thinking" is dropped: a model's earlier reasoning is no part of the conversation its
    # template renders (Ollama drops it too), and rbee's models never write any.
    checked: dict[str, Any] = {"role": message["role"], "content": content}
    calls = message.get("tool_calls")
    if calls:
        if message["role"] != "assistant" or not isinstance(calls, list):
            raise OllamaError(f"messages[{i}].tool_calls belong to an assistant message")
        checked["tool_calls"] = [_call(call, i) for call in calls]
    return checked


def _call(call: Any, i: int) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if (
        not isinstance(function, dict)
        or not isinstance(function.get("name"), str)
        or not isinstance(function.get("arguments", {}), dict)
    ):
        raise OllamaError(
            f'messages[{i}].tool_calls must be [{{"function": {{"name", "arguments": {{...}}}}}}]'
        )
    return {"function": {"name": function["name"], "arguments": function.get("arguments", {})}}


def parse_chat(body: Any, catalog: ModelCatalog) -> OllamaRequest:
    body = _checked(body, CHAT)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        # Ollama loads the model for an empty chat; rbee loads it with the first job.
        raise OllamaError(
            "messages must be a non-empty list (rbee loads a model with its first job)"
        )
    if len(messages) > MAX_MESSAGES:
        raise OllamaError(f"messages has {len(messages)} messages, at most {MAX_MESSAGES}")
    checked = [_message(m, i) for i, m in enumerate(messages)]
    tools = parse_tools({"tools": body.get("tools")})  # Ollama's tools: OpenAI's format
    conversation = render_messages(checked)
    users = [m["content"] for m in conversation if m["role"] == "user"]
    fields: dict[str, Any] = {
        # For backends without a chat template: the last thing the user said.
        "prompt": users[-1] if users else conversation[-1]["content"],
        "messages": conversation,
    }
    if tools is not None and tools.offered:
        fields["tools"] = tools.job_tools()
    job = _job(body, fields, catalog)
    return OllamaRequest(job, body["model"], _streams(body), tools)


def parse_generate(body: Any, catalog: ModelCatalog) -> OllamaRequest:
    if isinstance(body, dict) and any(body.get(name) for name in ("width", "height", "steps")):
        raise OllamaError("width, height and steps are for image models: rbee serves text")
    body = _checked(body, (*GENERATE, *GENERATE_ALSO))
    _no_images(body.get("images"), "")
    for name in ("suffix", "template", "context"):
        if body.get(name):
            raise OllamaError(
                f"{name} is not supported by rbee: "
                + {
                    "suffix": "it does not fill in the middle",
                    "template": "the model's own chat template renders the prompt",
                    "context": "send the conversation to /api/chat instead",
                }[name]
            )
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise OllamaError(
            "prompt must be a non-empty string (rbee loads a model with its first job)"
        )
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        raise OllamaError("system must be a string")
    raw = body.get("raw") or False
    if not isinstance(raw, bool):
        raise OllamaError(f"raw must be true or false, got {raw!r}")
    fields: dict[str, Any] = {"prompt": prompt}
    if raw:  # the prompt as it is, without the model's template
        if system:
            raise OllamaError("system has no effect with raw: put it in the prompt")
        fields["raw"] = True
    else:
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        fields["messages"] = messages
    job = _job(body, fields, catalog)
    return OllamaRequest(job, body["model"], _streams(body))


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    job: JobRequest
    model: str  # as the client named it
    dimensions: int | None = None


def _embed_common(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OllamaError("the request body must be a JSON object")
    unknown = sorted(name for name in body if name not in allowed)
    if unknown:
        raise OllamaError(f"unsupported field: {', '.join(unknown)}")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise OllamaError('"model" is required')
    # Sampling options change nothing about an embedding; unknown ones are still refused.
    parse_options(body.get("options"))
    return body


def _embed_job(body: dict[str, Any], texts: list[str], catalog: ModelCatalog) -> JobRequest:
    payload: dict[str, Any] = {"model": to_rbee(body["model"], catalog), "embed": texts}
    keep_alive = parse_keep_alive(body.get("keep_alive"))
    if keep_alive is not None:
        payload["keep_alive"] = keep_alive
    try:
        return JobRequest.from_json(payload)
    except InvalidRequest as exc:
        raise OllamaError(exc.message.replace("embed", "input")) from None


def parse_embed(body: Any, catalog: ModelCatalog) -> EmbedRequest:
    """``/api/embed``: ``input`` a string or a list of them; ``truncate`` is accepted either
    way, as rbee embeds each input whole (one too long for the model fails the job)."""
    body = _embed_common(
        body, ("model", "input", "truncate", "options", "keep_alive", "dimensions")
    )
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise OllamaError("input must be a non-empty string or a list of them")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise OllamaError(f"dimensions must be a whole number >= 1, got {dimensions!r}")
    return EmbedRequest(_embed_job(body, texts, catalog), body["model"], dimensions)


def parse_embeddings(body: Any, catalog: ModelCatalog) -> EmbedRequest:
    """The older ``/api/embeddings``: one ``prompt``, one ``embedding``."""
    body = _embed_common(body, ("model", "prompt", "options", "keep_alive"))
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise OllamaError("prompt must be a non-empty string")
    return EmbedRequest(_embed_job(body, [prompt], catalog), body["model"])
