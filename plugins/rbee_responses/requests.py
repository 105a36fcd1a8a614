"""A Responses request body to an rbee job.

The body is rewritten as the OpenAI chat request it amounts to (messages, nested tools,
``response_format``, ``max_completion_tokens``) and parsed by rbee_openai, so the tools, the
constrained calls and the structured output are the chat endpoint's own. Parameters rbee
cannot honour are refused by name; errors name the Responses parameter, not the chat one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rbee_openai.errors import OpenAIError
from rbee_openai.requests import OpenAIRequest, parse_chat
from rbee_responses.inputs import conversation

__all__ = ["ResponsesRequest", "parse_responses", "responses_param"]

HANDLED = (
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stream",
)
# Accepted and ignored: they change nothing about the answer. ``store``: rbee keeps every
# job's record (GET /jobs/{id}) whatever it says, and serves no stored responses to fetch.
# The cache hints: rbee's workers cache prompt prefixes on their own. ``stream_options``
# only asks for obfuscation padding in the events.
IGNORED = (
    "store",
    "metadata",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "stream_options",
)
# Accepted when they ask for nothing (null, or the value below); why anything else is
# refused.
NOTHING: dict[str, tuple[Any, str]] = {
    "previous_response_id": (
        None,
        "rbee's Responses API is stateless: send the whole conversation as input items",
    ),
    "conversation": (None, "rbee keeps no conversations: send them as input items"),
    "background": (False, "rbee answers in the foreground; a job runs on if you leave"),
    "include": ([], "rbee has no extra output data to include"),
    "reasoning": (None, "rbee's models do not reason in separate items"),
    "truncation": ("disabled", "rbee never drops input to fit the context"),
    "top_logprobs": (0, "rbee does not return log probabilities"),
    "max_tool_calls": (None, "rbee cannot bound the calls of a conversation"),
    "prompt": (None, "rbee has no stored prompt templates"),
    "context_management": (None, "rbee does not compact conversations"),
    "moderation": (None, "rbee does not moderate"),
    "image": (None, "rbee serves text models"),
    "background_options": (None, "rbee answers in the foreground"),
    "prompt_cache_options": (None, "rbee's workers cache prompt prefixes on their own"),
    "access_programs": (None, "rbee has no access programs"),
}
TOOL_FIELDS = ("type", "name", "description", "parameters", "strict")
FORMAT_FIELDS = ("type", "name", "schema", "strict", "description")
# The chat parameter a rbee_openai error names, and the Responses one it means.
CHAT_PARAMS = {
    "messages": "input",
    "max_completion_tokens": "max_output_tokens",
    "response_format": "text.format",
}


def responses_param(param: str | None) -> str | None:
    """The Responses name of a chat request's parameter."""
    return CHAT_PARAMS.get(param, param) if param is not None else None


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    chat: OpenAIRequest  # the job, the stream flag and the tools, as a chat request's
    echo: dict[str, Any] = field(default_factory=dict)  # what the response object repeats


def _refuse_unknown(body: dict[str, Any]) -> None:
    for name in body:
        if name not in (*HANDLED, *IGNORED, *NOTHING):
            raise OpenAIError(f"unsupported parameter: {name!r} is not supported by rbee", name)
    for name, (nothing, why) in NOTHING.items():
        if body.get(name) not in (None, nothing):
            raise OpenAIError(f"{name} is not supported by rbee: {why}", name)


def _chat_tool(tool: Any, i: int) -> dict[str, Any]:
    """A Responses function tool (flat) as a chat tool (nested under ``function``)."""
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind != "function":
        raise OpenAIError(
            f"tools[{i}] has type {kind!r}: rbee runs function tools only (built-in tools "
            "such as web_search or file_search are OpenAI's service's)",
            "tools",
        )
    for name, value in tool.items():
        if name not in TOOL_FIELDS and value is not None:
            raise OpenAIError(f"tools[{i}].{name} is not supported by rbee", "tools")
    function = {name: tool[name] for name in TOOL_FIELDS[1:] if tool.get(name) is not None}
    return {"type": "function", "function": function}


def _chat_choice(choice: Any) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        if not isinstance(choice.get("name"), str):
            raise OpenAIError('tool_choice {"type": "function"} needs a name', "tool_choice")
        return {"type": "function", "function": {"name": choice["name"]}}
    raise OpenAIError(
        'tool_choice must be "auto", "none", "required" or {"type": "function", "name": ...} '
        "(rbee has no built-in tools)",
        "tool_choice",
    )


def _response_format(text: Any) -> dict[str, Any] | None:
    """``text.format`` as chat's ``response_format`` (the same constrained decoding)."""
    if text is None:
        return None
    if not isinstance(text, dict):
        raise OpenAIError('text must be an object: {"format": {...}}', "text")
    for name, value in text.items():
        if name != "format" and value is not None:
            raise OpenAIError(f"text.{name} is not supported by rbee", f"text.{name}")
    form = text.get("format")
    if form is None:
        return None
    kind = form.get("type") if isinstance(form, dict) else None
    if not isinstance(form, dict) or kind not in ("text", "json_object", "json_schema"):
        raise OpenAIError(
            'text.format must be {"type": "text"}, {"type": "json_object"} or '
            '{"type": "json_schema", "name": ..., "schema": {...}}',
            "text.format",
        )
    for name in form:
        if name not in FORMAT_FIELDS:
            raise OpenAIError(f"text.format.{name} is not supported by rbee", "text.format")
    if kind == "text":
        return None  # free text: what an answer is without a format
    if kind == "json_object":
        return {"type": kind}
    if not isinstance(form.get("name"), str) or not isinstance(form.get("schema"), dict):
        raise OpenAIError(
            'text.format of type "json_schema" needs a name and a schema (an object)',
            "text.format",
        )
    # ``description`` tells OpenAI's model what the format is for: here the schema holds
    # the answer whatever the model makes of it, so it is accepted and left out.
    spec = {"name": form["name"], "schema": form["schema"]}
    if form.get("strict") is not None:
        spec["strict"] = form["strict"]
    return {"type": "json_schema", "json_schema": spec}


def _chat_body(body: dict[str, Any]) -> dict[str, Any]:
    chat: dict[str, Any] = {
        "model": body.get("model"),
        "messages": conversation(body.get("input"), body.get("instructions")),
    }
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise OpenAIError("tools must be a list of function tools", "tools")
        chat["tools"] = [_chat_tool(t, i) for i, t in enumerate(tools)]
    passed = {
        "tool_choice": _chat_choice(body.get("tool_choice")),
        "parallel_tool_calls": body.get("parallel_tool_calls"),
        "response_format": _response_format(body.get("text")),
        "max_completion_tokens": body.get("max_output_tokens"),
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "stream": body.get("stream"),
    }
    return chat | {name: value for name, value in passed.items() if value is not None}


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    """The request fields a Response object repeats, as the client's model types them."""
    form = (body.get("text") or {}).get("format") or {"type": "text"}
    return {
        "instructions": body.get("instructions"),
        "metadata": body.get("metadata"),
        "tools": [{name: t.get(name) for name in TOOL_FIELDS} for t in body.get("tools") or ()],
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "text": {"format": form},
        "max_output_tokens": body.get("max_output_tokens"),
        "user": body.get("user"),
        "store": body.get("store", True),
    }


def parse_responses(body: Any) -> ResponsesRequest:
    """Check a ``POST /v1/responses`` body and make its job."""
    if not isinstance(body, dict):
        raise OpenAIError("the request body must be a JSON object")
    _refuse_unknown(body)
    try:
        chat = parse_chat(_chat_body(body))
    except OpenAIError as exc:
        # Chat's nested tools[i].function.name is the flat tools[i].name here.
        message = exc.message.replace("].function.", "].")
        for chat_param, param in CHAT_PARAMS.items():
            message = message.replace(chat_param, param)
        raise OpenAIError(message, responses_param(exc.param), exc.status) from None
    return ResponsesRequest(chat, _echo(body))
