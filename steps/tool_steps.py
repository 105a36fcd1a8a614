"""Steps for tool calls through the official openai client."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from behave import given, then, when

from steps.support.jobs import DEFAULT_MODEL, auth
from steps.support.placeholders import default_gguf
from steps.support.sse import read_stream

# A ChatML template, as the default model's, that writes the tools itself (as Qwen's and
# Llama 3.1's do), in words of its own so a prompt shows which layout it got.
NATIVE_TOOLS_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n"
    "{%- if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}\n\n{% endif %}"
    "Functions you may call, one JSON object each:\n"
    "{%- for tool in tools %}\n{{ tool | tojson }}{%- endfor %}\n"
    'Call one as <tool_call>{"name": ..., "arguments": {...}}</tool_call>.<|im_end|>\n'
    "{%- elif messages[0]['role'] == 'system' %}<|im_start|>system\n"
    "{{ messages[0]['content'] }}<|im_end|>\n{%- endif %}"
    "{%- for message in messages %}{%- if message['role'] != 'system' %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)

TOOLS = {
    "get_weather": {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 40}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    },
    "get_time": {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Get the current time in a timezone.",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string", "maxLength": 40}},
                "required": ["timezone"],
                "additionalProperties": False,
            },
        },
    },
}


def _create(context: Any, choice: Any, max_tokens: int, stream: bool = False) -> Any:
    """The scenario's conversation so far, with its tools, greedy."""
    return context.openai.chat.completions.create(
        model=getattr(context, "tools_model", DEFAULT_MODEL),
        messages=context.conversation,
        tools=context.offered,
        tool_choice=choice,
        temperature=0,
        max_tokens=max_tokens,
        stream=stream,
    )


def _ask(context: Any, prompt: str, names: list[str], choice: Any, stream: bool = False) -> Any:
    context.conversation = [{"role": "user", "content": prompt}]
    context.offered = [TOOLS[n] for n in names]
    return _create(context, choice, 100, stream)


@when('I ask "{prompt}" offering get_weather with tool_choice "{choice}"')
def step_ask(context: Any, prompt: str, choice: str) -> None:
    context.completion = _ask(context, prompt, ["get_weather"], choice)


@when('I ask "{prompt}" offering get_weather and get_time naming {name}')
def step_ask_named(context: Any, prompt: str, name: str) -> None:
    choice = {"type": "function", "function": {"name": name}}
    context.completion = _ask(context, prompt, ["get_weather", "get_time"], choice)


def _check_call(call: Any, name: str, argument: str) -> None:
    assert call.type == "function" and call.id, call
    assert call.function.name == name, call
    arguments = json.loads(call.function.arguments)
    assert set(arguments) == {argument} and isinstance(arguments[argument], str), arguments


@then("the answer is a call of {name} with a string {argument}")
def step_is_call(context: Any, name: str, argument: str) -> None:
    message = context.completion.choices[0].message
    assert message.tool_calls, context.completion
    for call in message.tool_calls:
        _check_call(call, name, argument)
    assert message.content is None, message


@then('its finish_reason is "{reason}"')
def step_finish(context: Any, reason: str) -> None:
    assert context.completion.choices[0].finish_reason == reason, context.completion


@when('I send the call\'s result "{result}" back with tool_choice "{choice}"')
def step_result(context: Any, result: str, choice: str) -> None:
    message = context.completion.choices[0].message
    call = message.tool_calls[0]
    context.conversation += [
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": result},
    ]
    context.completion = _create(context, choice, 60)


@then("the answer is a message that is not a tool call")
def step_not_call(context: Any) -> None:
    choice = context.completion.choices[0]
    assert not choice.message.tool_calls, choice
    assert choice.message.content and choice.finish_reason in ("stop", "length"), choice


@when('I stream "{prompt}" offering get_weather with tool_choice "{choice}"')
def step_stream(context: Any, prompt: str, choice: str) -> None:
    context.chunks = list(_ask(context, prompt, ["get_weather"], choice, stream=True))


@then("the streamed deltas join into a call of {name} with a string {argument}")
def step_streamed_call(context: Any, name: str, argument: str) -> None:
    joined: dict[int, dict[str, Any]] = {}
    for chunk in context.chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                entry = joined.setdefault(delta.index, {"arguments": ""})
                if delta.id:
                    entry["id"] = delta.id
                if delta.function and delta.function.name:
                    entry["name"] = delta.function.name
                if delta.function and delta.function.arguments:
                    entry["arguments"] += delta.function.arguments
            assert not choice.delta.content, chunk  # a call is not shown as text
    assert joined, context.chunks
    context.streamed_calls = list(joined.values())
    for entry in joined.values():
        assert entry["id"] and entry["name"] == name, entry
        arguments = json.loads(entry["arguments"])
        assert set(arguments) == {argument} and isinstance(arguments[argument], str), entry


@then('the stream\'s finish_reason is "{reason}"')
def step_stream_finish(context: Any, reason: str) -> None:
    reasons = [c.choices[0].finish_reason for c in context.chunks if c.choices]
    assert reasons[-1] == reason, reasons


@when('I stream the call\'s result "{result}" back with tool_choice "{choice}"')
def step_stream_result(context: Any, result: str, choice: str) -> None:
    call = context.streamed_calls[0]
    context.conversation += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": result},
    ]
    context.chunks = list(_create(context, choice, 60, stream=True))


@then("the streamed answer is text, not a tool call")
def step_streamed_text(context: Any) -> None:
    text = "".join(c.choices[0].delta.content or "" for c in context.chunks if c.choices)
    calls = [c for c in context.chunks if c.choices and c.choices[0].delta.tool_calls]
    assert text.strip() and not calls, context.chunks
    reasons = [c.choices[0].finish_reason for c in context.chunks if c.choices]
    assert reasons[-1] in ("stop", "length"), reasons


@given("a copy of the default model whose chat template writes tools itself")
def step_native_tools_model(context: Any) -> None:
    """The default model's GGUF with only its chat template changed, made once per models
    folder (the copy is the model's ~100 MB again)."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    path = Path(context.models_dir, "smollm2-135m-native-tools.gguf")
    if not path.exists():
        reader = gguf.GGUFReader(default_gguf(), "r")
        arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
        partial = path.with_suffix(f".{os.getpid()}.partial")
        writer = gguf.GGUFWriter(partial, arch=arch, endianess=reader.endianess)
        template = MetadataDetails(gguf.GGUFValueType.STRING, NATIVE_TOOLS_TEMPLATE)
        copy_with_new_metadata(reader, writer, {gguf.Keys.Tokenizer.CHAT_TEMPLATE: template}, [])
        partial.rename(path)
    context.tools_model = f"file:{path}"


@then('the job behind the answer narrated "{text}"')
def step_answer_narrated(context: Any, text: str) -> None:
    job_id = "job-" + context.completion.id.removeprefix("chatcmpl-")
    stream = read_stream(f"{context.queen_url}/jobs/{job_id}/stream", auth(context))
    said = [n["message"] for n in stream.narration]
    assert any(text in m for m in said), said
