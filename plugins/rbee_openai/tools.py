"""Tool calls: OpenAI's ``tools`` to the model and its calls back as ``tool_calls``.

The tools go with the job (``JobRequest.tools``): a model whose chat template knows tools
gets them through it, any other in its system message in the Hermes layout that Qwen's and
Hermes' own templates write (rbee_core.chat_tools). The conversation's calls and results
are in that layout either way (calls in ``<tool_call>`` tags, results in
``<tool_response>``), which those templates write themselves and any template carries.
The answer is read as calls in the Hermes layout, bare JSON, or the layouts Llama 3.1
(``"parameters"`` for the arguments) and Mistral (``[TOOL_CALLS]``) templates train.

With ``tool_choice`` "required" or a named function the answer is constrained to a call
whose arguments validate against the function's parameter schema (``response_format``'s
machinery), so even a 135M model returns a valid call. With "auto" the model chooses, and
its answer is read as calls when it is one; "none" leaves the tools out of the prompt.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from rbee_core.json_schema import closed
from rbee_openai.errors import OpenAIError

__all__ = ["CallReader", "Tools", "parse_tools", "render_messages"]

MAX_TOOLS = 64
MAX_PARALLEL_CALLS = 8
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CALL_TAGS = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_OPEN = "<tool_call>"
# What native templates train a model to write before its calls (Mistral, Llama 3.1).
_CALL_PREFIX = re.compile(r"^\s*(?:\[TOOL_CALLS\]|<\|python_tag\|>)")
_PREFIXES = ("[TOOL_CALLS]", "<|python_tag|>")


@dataclass(frozen=True, slots=True)
class Tools:
    """The functions a request offers, and how the model may use them."""

    functions: tuple[dict[str, Any], ...]  # {"name", "description"?, "parameters"}
    choice: str  # "auto", "none", "required", or the one function's name it must call
    parallel: bool

    @property
    def offered(self) -> bool:
        return self.choice != "none"

    @property
    def forced(self) -> bool:
        return self.choice not in ("auto", "none")

    def job_tools(self) -> list[dict[str, Any]] | None:
        """The functions for the job (``JobRequest.tools``); None when left out ("none")."""
        return [dict(f) for f in self.functions] if self.offered else None

    def response_format(self) -> dict[str, Any] | None:
        """The JSON Schema a forced call is held to: a call of the named function, or of
        any of them ("required"); several at once when parallel calls are allowed."""
        if not self.forced:
            return None
        chosen = [f for f in self.functions if self.choice in ("required", f["name"])]
        calls = [_call_schema(f) for f in chosen]
        one: dict[str, Any] = calls[0] if len(calls) == 1 else {"anyOf": calls}
        schema = one
        if self.parallel and self.choice == "required":
            schema = {
                "type": "array",
                "items": one,
                "minItems": 1,
                "maxItems": MAX_PARALLEL_CALLS,
            }
        return {"type": "json_schema", "json_schema": {"name": "tool_call", "schema": schema}}

    def calls_in(self, text: str) -> list[dict[str, Any]] | None:
        """The calls ``text`` makes, as OpenAI ``tool_calls``; None when it is an answer.

        A call is ``<tool_call>{"name", "arguments"}</tool_call>`` (the Hermes layout),
        or, as a forced answer is held to, that JSON bare or a list of it, also after
        Mistral's ``[TOOL_CALLS]`` or Llama's ``<|python_tag|>``, and with Llama 3.1's
        ``"parameters"`` for the arguments. Every call must name an offered function, or
        the text is taken as a plain answer.
        """
        if not self.offered:
            return None
        text = _CALL_PREFIX.sub("", text, count=1)
        tagged = _CALL_TAGS.findall(text)
        found: list[Any] = []
        try:
            if tagged:
                found = [json.loads(t) for t in tagged]
            else:
                bare = json.loads(text)
                found = bare if isinstance(bare, list) else [bare]
        except json.JSONDecodeError:
            return None
        names = {f["name"] for f in self.functions}
        calls = []
        for call in found:
            if not isinstance(call, dict) or call.get("name") not in names:
                return None
            arguments = call.get("arguments", call.get("parameters", {}))
            if isinstance(arguments, str):  # some models write the arguments as a string
                try:
                    arguments = json.loads(arguments)
                except json.JSONDecodeError:
                    return None
            if not isinstance(arguments, dict):
                return None
            calls.append(
                {
                    "id": f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": json.dumps(arguments, ensure_ascii=False),
                    },
                }
            )
        return calls or None


def _call_schema(function: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "name": {"const": function["name"]},
            # Arguments follow OpenAI's strict mode: no property the parameters leave out.
            "arguments": closed(function.get("parameters") or {"type": "object"}),
        },
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def parse_tools(body: dict[str, Any]) -> Tools | None:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` of a chat request, checked."""
    raw = body.get("tools")
    choice = body.get("tool_choice")
    if raw is None or raw == []:
        if choice not in (None, "none", "auto"):
            raise OpenAIError("tool_choice needs tools to choose from", "tool_choice")
        return None
    if not isinstance(raw, list) or len(raw) > MAX_TOOLS:
        raise OpenAIError(f"tools must be a list of at most {MAX_TOOLS} functions", "tools")
    functions = []
    for i, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not function:
            raise OpenAIError(
                f'tools[{i}] must be {{"type": "function", "function": {{...}}}}', "tools"
            )
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not _NAME.match(name):
            raise OpenAIError(
                f"tools[{i}].function.name must be 1-64 letters, digits, _ or -", "tools"
            )
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise OpenAIError(f"tools[{i}].function.parameters must be a JSON Schema", "tools")
        entry: dict[str, Any] = {"name": name, "parameters": parameters}
        if isinstance(function.get("description"), str):
            entry["description"] = function["description"]
        functions.append(entry)
    names = [f["name"] for f in functions]
    if len(set(names)) != len(names):
        raise OpenAIError("tools must have distinct function names", "tools")
    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise OpenAIError("parallel_tool_calls must be true or false", "parallel_tool_calls")
    return Tools(tuple(functions), _choice(choice, names), parallel)


def _choice(choice: Any, names: list[str]) -> str:
    if choice is None:
        return "auto"
    if choice in ("auto", "none", "required"):
        return str(choice)
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(choice, dict) or choice.get("type") != "function" or name is None:
        raise OpenAIError(
            'tool_choice must be "auto", "none", "required" or '
            '{"type": "function", "function": {"name": ...}}',
            "tool_choice",
        )
    if name not in names:
        raise OpenAIError(
            f"tool_choice names {name!r}, which is not among the tools ({', '.join(names)})",
            "tool_choice",
        )
    return str(name)


def render_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation as plain role/content messages, in the Hermes layout: an
    assistant's calls as ``<tool_call>`` text, a tool's result as a user turn in
    ``<tool_response>`` (a template without a "tool" role renders it). The tools themselves
    go with the job (``Tools.job_tools``)."""
    out: list[dict[str, str]] = []
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "tool":
            out.append({"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"})
            continue
        calls = message.get("tool_calls") or []
        text = [content] if content else []
        for call in calls:
            function = call["function"]
            arguments = function.get("arguments") or "{}"
            with contextlib.suppress(json.JSONDecodeError):  # kept as written if not JSON
                arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
            body = json.dumps({"name": function["name"], "arguments": arguments})
            text.append(f"<tool_call>\n{body}\n</tool_call>")
        out.append({"role": role, "content": "\n".join(text)})
    return out


class CallReader:
    """Streams an answer that may turn out to be tool calls: text is passed on as it comes
    once it cannot be a call; while it could be (it opens with ``<tool_call>`` or JSON)
    it is held, and read at the end. A forced call is held from the start."""

    def __init__(self, tools: Tools) -> None:
        self.tools = tools
        self._held = ""
        self._state = "holding" if tools.forced else "deciding" if tools.offered else "passing"

    def feed(self, text: str) -> str:
        """What may be shown of ``text`` now."""
        if self._state == "passing":
            return text
        self._held += text
        if self._state == "holding":
            return ""
        start = self._held.lstrip()
        opens = (_OPEN, *_PREFIXES)
        if not start or any(len(start) < len(o) and o.startswith(start) for o in opens):
            return ""  # too early to tell
        if start[0] in "{[" or start.startswith(opens):
            self._state = "holding"
            return ""
        self._state = "passing"
        shown, self._held = self._held, ""
        return shown

    def finish(self) -> tuple[str, list[dict[str, Any]] | None]:
        """At the end: (held text still to show, the calls when the answer is calls)."""
        calls = self.tools.calls_in(self._held) if self._held else None
        if calls:
            return "", calls
        shown, self._held = self._held, ""
        return shown, None
