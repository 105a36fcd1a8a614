"""Anthropic's ``system`` and ``messages`` (content blocks) as the conversation rbee_openai
renders: an assistant's ``tool_use`` blocks become its ``tool_calls``, a user's
``tool_result`` blocks ``tool`` messages, so tools and their results reach the model in
the same layout as through ``/v1/chat/completions``.

rbee serves text models: image and document blocks are refused by name, as are blocks
rbee never produces (thinking) or whose work happens on Anthropic's servers.
"""

from __future__ import annotations

import json
from typing import Any

from rbee_anthropic.errors import AnthropicError

__all__ = ["conversation", "system_text"]

# A block's keys that change nothing about the answer: prompt caching is rbee's own,
# automatic (a worker keeps the prefixes of earlier jobs).
_IGNORED_KEYS = ("cache_control",)
_MEDIA = ("image", "document", "search_result")


def _check_keys(block: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in block:
        if key not in ("type", *allowed, *_IGNORED_KEYS):
            raise AnthropicError(f"{where}.{key}: not supported by rbee")


def _text_block(block: Any, where: str) -> str:
    """A ``{"type": "text", "text"}`` block's text."""
    if not isinstance(block, dict) or block.get("type") != "text":
        kind = block.get("type") if isinstance(block, dict) else None
        if kind in _MEDIA:
            raise AnthropicError(
                f"{where}: {kind} blocks are not supported: rbee serves text models"
            )
        raise AnthropicError(f'{where}: expected a {{"type": "text", "text": ...}} block')
    _check_keys(block, ("text", "citations"), where)
    if block.get("citations"):
        raise AnthropicError(f"{where}.citations: not supported by rbee")
    if not isinstance(block.get("text"), str):
        raise AnthropicError(f"{where}.text: must be a string")
    return str(block["text"])


def _texts(content: Any, where: str) -> str:
    """Content that is a string or a list of text blocks, as one text."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise AnthropicError(f"{where}: must be a string or a list of text blocks")
    return "\n".join(_text_block(b, f"{where}[{i}]") for i, b in enumerate(content))


def system_text(system: Any) -> str:
    """``system``: a string, or a list of text blocks (joined by newlines)."""
    return _texts(system, "system")


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    _check_keys(block, ("tool_use_id", "content", "is_error"), where)
    if not isinstance(block.get("tool_use_id"), str) or not block["tool_use_id"]:
        raise AnthropicError(f"{where}.tool_use_id: the id of the tool_use it answers")
    text = _texts(block.get("content", ""), f"{where}.content")
    failed = block.get("is_error", False)
    if not isinstance(failed, bool):
        raise AnthropicError(f"{where}.is_error: must be true or false")
    # The model reads the result as text: a failed call says so, as the tool's own
    # error output would.
    return {
        "role": "tool",
        "tool_call_id": block["tool_use_id"],
        "content": f"Error: {text}" if failed else text,
    }


def _tool_use(block: dict[str, Any], where: str) -> dict[str, Any]:
    """An assistant's ``tool_use`` block as an OpenAI tool call."""
    _check_keys(block, ("id", "name", "input"), where)
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise AnthropicError(f"{where}: a tool_use block needs an id and a name")
    if not isinstance(block.get("input", {}), dict):
        raise AnthropicError(f"{where}.input: must be an object")
    arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
    return {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": arguments},
    }


def _user(content: list[Any], where: str) -> list[dict[str, Any]]:
    """A user turn's blocks, in order: text blocks (consecutive ones joined) as user
    messages, each tool_result as a tool message."""
    out: list[dict[str, Any]] = []
    texts: list[str] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        if isinstance(block, dict) and block.get("type") == "tool_result":
            if texts:
                out.append({"role": "user", "content": "\n".join(texts)})
                texts = []
            out.append(_tool_result(block, at))
        elif isinstance(block, dict) and block.get("type") == "tool_use":
            raise AnthropicError(f"{at}: tool_use blocks belong to assistant messages")
        else:
            texts.append(_text_block(block, at))
    if texts or not out:
        out.append({"role": "user", "content": "\n".join(texts)})
    return out


def _assistant(content: list[Any], where: str) -> dict[str, Any]:
    """An assistant turn: its text, and its tool_use blocks as tool calls."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_use":
            calls.append(_tool_use(block, at))
        elif kind == "tool_result":
            raise AnthropicError(f"{at}: tool_result blocks belong to user messages")
        elif kind in ("thinking", "redacted_thinking"):
            raise AnthropicError(f"{at}: {kind} blocks are not supported: rbee does not think")
        else:
            texts.append(_text_block(block, at))
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts)}
    if calls:
        message["tool_calls"] = calls
    return message


def conversation(messages: Any, system: Any = None) -> list[dict[str, Any]]:
    """``system`` and ``messages``, checked, as OpenAI-shaped chat messages."""
    if not isinstance(messages, list) or not messages:
        raise AnthropicError("messages: must be a non-empty list")
    out: list[dict[str, Any]] = []
    if system is not None:
        text = system_text(system)
        if text:
            out.append({"role": "system", "content": text})
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise AnthropicError(f'{where}.role: must be "user" or "assistant"')
        for key in message:
            if key not in ("role", "content"):
                raise AnthropicError(f"{where}.{key}: not supported by rbee")
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise AnthropicError(f"{where}.content: must be a string or a list of blocks")
        if message["role"] == "user":
            out.extend(_user(content, where))
        else:
            out.append(_assistant(content, where))
    if messages[-1].get("role") != "user":
        raise AnthropicError(
            "messages: the last message must be the user's: rbee answers a new assistant "
            "turn and does not continue a partial one (prefill)"
        )
    return out
