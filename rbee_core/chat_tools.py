"""Functions a chat job offers its model, and the two ways they reach it.

A job's ``tools`` are OpenAI-style function definitions (name, description, parameters). A
model whose chat template knows tools (Qwen, Llama 3.1, Mistral, Hermes...) gets them
through its template, written the way it was trained on; any other model gets them in its
conversation's system message, in the Hermes layout (signatures in ``<tools>``, calls in
``<tool_call>`` tags), which any template carries. Either way the model's calls are read
back by the API layer that offered them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec

__all__ = [
    "MAX_TOOLS",
    "TOOLS_NATIVE",
    "TOOL_NAME",
    "Tool",
    "chat_input",
    "hermes_system_prompt",
    "template_knows_tools",
    "template_tools",
    "with_tools_in_system",
]

MAX_TOOLS = 64
TOOLS_NATIVE = "{model}'s chat template writes tools itself: a job's tools go to it"
"""What a backend narrates when it loads a model whose template knows tools."""
TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"


class Tool(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A function a job offers its model: OpenAI's function format, as the client wrote it
    (``description`` and ``parameters`` only where given)."""

    name: Annotated[str, msgspec.Meta(pattern=TOOL_NAME)]
    description: str | msgspec.UnsetType = msgspec.UNSET
    parameters: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


def hermes_system_prompt(functions: tuple[dict[str, Any], ...]) -> str:
    """The functions as Qwen's and Hermes' own templates write them into a system message."""
    signatures = "\n".join(
        json.dumps({"type": "function", "function": f}, ensure_ascii=False) for f in functions
    )
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{signatures}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments "
        "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def with_tools_in_system(
    messages: tuple[tuple[str, str], ...], functions: tuple[dict[str, Any], ...]
) -> tuple[tuple[str, str], ...]:
    """``messages`` with the functions in the Hermes layout, after the system message's own
    text (or as a system message of their own): for a template that knows no tools."""
    prompt = hermes_system_prompt(functions)
    if messages and messages[0][0] == "system":
        return (("system", f"{messages[0][1]}\n\n{prompt}"), *messages[1:])
    return (("system", prompt), *messages)


def template_tools(functions: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The functions as chat templates take them (``tools=``, transformers' convention)."""
    return [{"type": "function", "function": f} for f in functions]


def chat_input(
    prompt: str,
    messages: tuple[tuple[str, str], ...],
    functions: tuple[dict[str, Any], ...],
    native: bool,
) -> tuple[list[dict[str, str]], list[dict[str, Any]] | None]:
    """What a chat template is given, the same for every backend: the conversation (the
    prompt as one user turn when there are no ``messages``) and its ``tools=``. A template
    that writes tools itself (``native``) gets them; otherwise they go into the system
    message, in the Hermes layout."""
    if functions and not native:
        messages = with_tools_in_system(messages or (("user", prompt),), functions)
    conversation = [{"role": r, "content": c} for r, c in messages] or [
        {"role": "user", "content": prompt}
    ]
    return conversation, template_tools(functions) if functions and native else None


def template_knows_tools(template: str) -> bool:
    """Whether a Jinja chat template reads a ``tools`` variable: then it writes the
    functions itself, in the layout its model was trained on."""
    import jinja2  # transformers' and llama-cpp-python's own dependency
    from jinja2 import meta

    try:
        parsed = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(template)
    except jinja2.TemplateError:
        return False  # one that cannot be parsed cannot be rendered either: not ours to judge
    return "tools" in meta.find_undeclared_variables(parsed)
