"""A Responses ``input`` (a string, or a list of items) as a chat conversation.

The items become the messages of an OpenAI chat request, so rbee_openai renders them as it
renders a chat's: a ``function_call`` item is an assistant message's ``tool_calls`` entry,
a ``function_call_output`` item a ``tool`` message, ``developer`` a system message.
"""

from __future__ import annotations

from typing import Any

from rbee_core.job_request import MAX_MESSAGES
from rbee_openai.errors import OpenAIError

__all__ = ["conversation"]

ROLES = ("user", "assistant", "system", "developer")
# Parts that carry text: what the user wrote, what the model answered, what it refused.
TEXT_PARTS = {"input_text": "text", "output_text": "text", "refusal": "refusal"}
MEDIA_PARTS = ("input_image", "input_file", "input_audio")
# Items of OpenAI's own service: its stored items, its reasoning, its built-in tools' calls.
SERVICE_ITEMS = {
    "item_reference": "it points at an item OpenAI stored; send the item itself",
    "reasoning": "rbee's models return no reasoning items to send back",
    "compaction": "rbee does not compact conversations",
}


def _text(content: Any, where: str) -> str:
    """Message content: a string, or a list of text parts (joined as they come)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise OpenAIError(f"{where}.content must be a string or a list of parts", where)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in MEDIA_PARTS:
            raise OpenAIError(
                f"{where}.content[{j}] is {kind}: rbee serves text models, "
                "send input_text parts only",
                f"{where}.content",
            )
        key = TEXT_PARTS.get(kind) if isinstance(kind, str) else None
        if key is None or not isinstance(part.get(key), str):
            raise OpenAIError(
                f"{where}.content[{j}] must be a text part "
                '({"type": "input_text" or "output_text", "text": ...})',
                f"{where}.content",
            )
        texts.append(part[key])
    return "".join(texts)


def _field(item: dict[str, Any], name: str, where: str, kinds: Any = str) -> Any:
    value = item.get(name)
    if not isinstance(value, kinds):
        raise OpenAIError(f"{where} ({item['type']}) needs {name}", f"{where}.{name}")
    return value


def _add(messages: list[dict[str, Any]], item: Any, where: str) -> None:
    """Append one input item to the chat conversation. An item's bookkeeping (``id``,
    ``status``) changes nothing about the answer and is not looked at."""
    if not isinstance(item, dict):
        raise OpenAIError(f"{where} must be an object (an input item)", where)
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        role = item.get("role")
        if role not in ROLES:
            raise OpenAIError(f"{where}.role must be one of {', '.join(ROLES)}", f"{where}.role")
        messages.append({"role": role, "content": _text(item.get("content"), where)})
    elif kind == "function_call":
        item = dict(item, type=kind)
        call = {
            "id": _field(item, "call_id", where),
            "type": "function",
            "function": {
                "name": _field(item, "name", where),
                "arguments": _field(item, "arguments", where),
            },
        }
        last = messages[-1] if messages else None
        # Calls made together are one assistant turn, as a chat's tool_calls are.
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
    elif kind == "function_call_output":
        item = dict(item, type=kind)
        output = _field(item, "output", where, (str, list))
        messages.append(
            {
                "role": "tool",
                "tool_call_id": _field(item, "call_id", where),
                "content": _text(output, f"{where}.output") if isinstance(output, list) else output,
            }
        )
    elif kind in SERVICE_ITEMS:
        raise OpenAIError(f"{where} is a {kind} item: {SERVICE_ITEMS[kind]}", f"{where}.type")
    else:
        raise OpenAIError(
            f"{where} has type {kind!r}: rbee takes message, function_call and "
            "function_call_output items (built-in tools' items are OpenAI's service's)",
            f"{where}.type",
        )


def conversation(raw: Any, instructions: Any) -> list[dict[str, Any]]:
    """``instructions`` and ``input`` as chat messages, checked."""
    messages: list[dict[str, Any]] = []
    if instructions is not None:
        if not isinstance(instructions, str):
            raise OpenAIError("instructions must be a string", "instructions")
        if instructions:
            messages.append({"role": "system", "content": instructions})
    if isinstance(raw, str):
        if not raw:
            raise OpenAIError("input must not be empty", "input")
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list) and raw:
        if len(raw) > MAX_MESSAGES:  # before any is looked at (the job checks it again)
            raise OpenAIError(f"input has {len(raw)} items, at most {MAX_MESSAGES}", "input")
        for i, item in enumerate(raw):
            _add(messages, item, f"input[{i}]")
    else:
        raise OpenAIError("input is required: a string, or a non-empty list of items", "input")
    return messages
