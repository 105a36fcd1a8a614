"""Messages API request bodies to rbee job requests.

Fields rbee honours map onto the job; fields it cannot honour are refused by name (a 400
whose message starts with the field, as Anthropic's own do) rather than silently ignored.
Tools go through rbee_openai's machinery: Anthropic's ``{name, description, input_schema}``
become OpenAI functions, ``tool_choice`` any/tool are constrained as OpenAI's
required/named choices are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rbee_anthropic.content import conversation
from rbee_anthropic.errors import AnthropicError
from rbee_core.errors import InvalidRequest
from rbee_core.job_request import JobRequest
from rbee_openai.errors import OpenAIError
from rbee_openai.tools import Tools, parse_tools, render_messages

__all__ = ["MessagesRequest", "parse_count_tokens", "parse_messages"]

# Accepted and ignored: they change nothing about the answer. ``metadata`` (a user id) is
# Anthropic's bookkeeping; prompt caching (``cache_control``) is automatic in rbee; every
# request gets the one service tier there is.
_IGNORED = ("metadata", "cache_control", "service_tier")
_PROMPT = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config")
CREATE_FIELDS = (
    *_PROMPT,
    "max_tokens",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    *_IGNORED,
)
# What POST /v1/messages/count_tokens takes, as Anthropic's does.
COUNT_FIELDS = (*_PROMPT, "cache_control")
_TOOL_KEYS = ("name", "description", "input_schema", "type", "strict", "cache_control")
_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
# A job's fields by the Messages API's names, for its errors.
_FIELD_NAMES = {"stop": "stop_sequences", "prompt": "messages"}


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    job: JobRequest
    stream: bool
    tools: Tools | None = None  # the tools offered, when the answer may be tool_use blocks
    single_call: bool = False  # disable_parallel_tool_use: at most one tool_use block


def _check_fields(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise AnthropicError("the request body must be a JSON object")
    for name in body:
        if name not in allowed:
            raise AnthropicError(f"{name}: not supported by rbee")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise AnthropicError("model: required, a model name from GET /v1/models")
    thinking = body.get("thinking")
    if thinking is not None and thinking != {"type": "disabled"}:
        raise AnthropicError(
            "thinking: not supported by rbee (its models answer without thinking blocks); "
            'leave it out or send {"type": "disabled"}'
        )
    return body


def _function(tool: Any, i: int) -> dict[str, Any]:
    """An Anthropic (client) tool as an OpenAI function tool."""
    where = f"tools[{i}]"
    if not isinstance(tool, dict):
        raise AnthropicError(f"{where}: must be an object with a name and an input_schema")
    if tool.get("type", "custom") != "custom":
        raise AnthropicError(
            f"{where}.type: {tool['type']!r} is a tool Anthropic runs on its servers; rbee "
            "runs only the client's tools (name, description, input_schema)"
        )
    for key in tool:
        if key not in _TOOL_KEYS:
            raise AnthropicError(f"{where}.{key}: not supported by rbee")
    if not isinstance(tool.get("name"), str):
        raise AnthropicError(f"{where}.name: required, a string")
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise AnthropicError(f"{where}.input_schema: required, a JSON Schema object")
    function: dict[str, Any] = {"name": tool["name"], "parameters": schema}
    if tool.get("description") is not None:
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _choice(choice: Any) -> tuple[Any, bool]:
    """``tool_choice`` as OpenAI's, and whether parallel calls are allowed."""
    if choice is None:
        return None, True
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in (*_CHOICES, "tool"):
        raise AnthropicError(
            'tool_choice: must be {"type": "auto"}, {"type": "any"}, {"type": "none"} or '
            '{"type": "tool", "name": ...}'
        )
    for key in choice:
        if key not in ("type", "name", "disable_parallel_tool_use"):
            raise AnthropicError(f"tool_choice.{key}: not supported by rbee")
    single = choice.get("disable_parallel_tool_use", False)
    if not isinstance(single, bool):
        raise AnthropicError("tool_choice.disable_parallel_tool_use: must be true or false")
    if kind == "tool":
        if not isinstance(choice.get("name"), str):
            raise AnthropicError('tool_choice.name: {"type": "tool"} names the tool to use')
        return {"type": "function", "function": {"name": choice["name"]}}, not single
    return _CHOICES[kind], not single


def _tools(body: dict[str, Any]) -> Tools | None:
    raw = body.get("tools")
    if raw is not None and not isinstance(raw, list):
        raise AnthropicError("tools: must be a list of tools")
    choice, parallel = _choice(body.get("tool_choice"))
    shaped: dict[str, Any] = {"parallel_tool_calls": parallel}
    if raw:
        shaped["tools"] = [_function(tool, i) for i, tool in enumerate(raw)]
    if choice is not None:
        shaped["tool_choice"] = choice
    try:
        return parse_tools(shaped)
    except OpenAIError as exc:
        field = exc.param if exc.param == "tool_choice" else "tools"
        raise AnthropicError(f"{field}: {exc.message}") from None


def _output_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """``output_config.format`` (structured outputs) as a constrained response_format."""
    config = body.get("output_config")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise AnthropicError("output_config: must be an object")
    for key, value in config.items():
        if key != "format" and value is not None:
            raise AnthropicError(f"output_config.{key}: not supported by rbee")
    shape = config.get("format")
    if shape is None:
        return None
    if (
        not isinstance(shape, dict)
        or shape.get("type") != "json_schema"
        or not isinstance(shape.get("schema"), dict)
    ):
        raise AnthropicError(
            'output_config.format: must be {"type": "json_schema", "schema": {...}}'
        )
    # Anthropic's structured outputs always hold to the schema, as OpenAI's strict mode.
    return {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": shape["schema"], "strict": True},
    }


def _job(payload: dict[str, Any], where: dict[str, str]) -> JobRequest:
    try:
        return JobRequest.from_json(payload)
    except InvalidRequest as exc:
        field = where.get(exc.field or "", exc.field)
        raise AnthropicError(f"{field}: {exc.message}" if field else exc.message) from None


def _prompt(body: dict[str, Any], tools: Tools | None) -> dict[str, Any]:
    """The job's model, conversation and tools (laid out as rbee_openai's)."""
    chat = render_messages(conversation(body.get("messages"), body.get("system")))
    users = [m["content"] for m in chat if m["role"] == "user"]
    # ``prompt``: for backends without a chat template, the last thing the user said.
    fields: dict[str, Any] = {"model": body["model"], "prompt": users[-1], "messages": chat}
    if tools is not None and tools.offered:
        fields["tools"] = tools.job_tools()
    return fields


def parse_messages(body: Any) -> MessagesRequest:
    """A ``POST /v1/messages`` body, checked, as a job request."""
    body = _check_fields(body, CREATE_FIELDS)
    if "max_tokens" not in body:
        raise AnthropicError("max_tokens: required, the most tokens to answer with")
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise AnthropicError("stream: must be true or false")
    tools = _tools(body)
    payload = _prompt(body, tools)
    for name in ("max_tokens", "temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            payload[name] = body[name]
    stops = body.get("stop_sequences")
    if stops is not None and not isinstance(stops, list):
        raise AnthropicError("stop_sequences: must be a list of strings")
    if stops:
        payload["stop"] = stops
    where = dict(_FIELD_NAMES, response_format="output_config.format")
    output = _output_format(body)
    if output is not None:
        payload["response_format"] = output
    if tools is not None and tools.forced:
        if output is not None:
            raise AnthropicError(
                "output_config.format: cannot be combined with tool_choice any or tool: "
                "the answer is the tool call"
            )
        payload["response_format"] = tools.response_format()
        where["response_format"] = "tools"
    single = tools is not None and not tools.parallel
    return MessagesRequest(_job(payload, where), stream, tools, single)


def parse_count_tokens(body: Any) -> JobRequest:
    """A ``POST /v1/messages/count_tokens`` body as a one-token job: the worker's prompt
    token count of it is the model's own tokenizer and chat template at work."""
    body = _check_fields(body, COUNT_FIELDS)
    tools = _tools(body)
    _output_format(body)  # checked; a constraint adds no prompt tokens
    payload = _prompt(body, tools) | {"max_tokens": 1, "temperature": 0.0}
    return _job(payload, _FIELD_NAMES)
