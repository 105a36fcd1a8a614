"""Tool calls in the OpenAI layer: what reaches the model, what a forced call is held to,
and how an answer is read back as calls, whole or streamed."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from rbee_core.backends import GenerationParams
from rbee_openai.errors import OpenAIError
from rbee_openai.requests import parse_chat
from rbee_openai.tools import CallReader, Tools, parse_tools

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time"}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def chat(**extra: Any) -> Any:
    return parse_chat({"model": "m", "messages": ASK} | extra)


def tools(choice: Any = None, parallel: bool = True) -> Tools:
    body: dict[str, Any] = {"tools": [WEATHER, TIME], "parallel_tool_calls": parallel}
    if choice is not None:
        body["tool_choice"] = choice
    found = parse_tools(body)
    assert found is not None
    return found


def test_the_tools_go_with_the_job_and_reach_a_template_without_tools_in_the_system() -> None:
    req = chat(tools=[WEATHER], messages=[{"role": "system", "content": "Be brief."}, *ASK])
    assert req.job.turns[0] == ("system", "Be brief.")  # as the client wrote it
    assert req.job.tools is not None
    assert msgspec.to_builtins(req.job.tools) == (WEATHER["function"],)
    assert req.job.response_format is None  # "auto": the model chooses
    # What a backend whose template knows no tools renders: the Hermes layout.
    system = GenerationParams.from_request(req.job).chat_messages()[0]
    assert system[0] == "system" and system[1].startswith("Be brief.\n\n# Tools")
    assert '"name": "get_weather"' in system[1] and "<tool_call>" in system[1]


def test_none_leaves_the_tools_out() -> None:
    req = chat(tools=[WEATHER], tool_choice="none")
    assert req.job.turns == (("user", ASK[0]["content"]),)
    assert req.job.tools is None


@pytest.mark.parametrize(
    "text",
    [
        '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]',  # Mistral
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}',  # Llama 3.1
        '{"name": "get_weather", "parameters": {"city": "Paris"}}',
    ],
)
def test_calls_in_the_layouts_native_templates_train_are_read(text: str) -> None:
    calls = tools().calls_in(text)
    assert calls is not None and len(calls) == 1
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    reader = CallReader(tools())
    assert reader.feed(text[:4]) == ""  # held: it may be a call
    reader.feed(text[4:])
    held, read = reader.finish()
    assert held == "" and read is not None and read[0]["function"] == calls[0]["function"]


def test_a_named_function_holds_the_answer_to_a_call_of_it() -> None:
    req = chat(
        tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_weather"}}
    )
    shape = req.job.response_format
    assert shape is not None and shape.schema is not None
    schema = json.loads(shape.schema)
    assert schema["properties"]["name"] == {"const": "get_weather"}
    assert schema["properties"]["arguments"]["required"] == ["city"]
    # as OpenAI's strict mode: no argument the parameters leave out
    assert schema["properties"]["arguments"]["additionalProperties"] is False


def test_required_allows_any_function_and_several_calls_when_parallel() -> None:
    single = tools("required", parallel=False).response_format()
    assert single is not None
    assert len(single["json_schema"]["schema"]["anyOf"]) == 2
    several = tools("required").response_format()
    assert several is not None and several["json_schema"]["schema"]["type"] == "array"


def test_a_tool_round_trip_is_rendered_in_the_hermes_layout() -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    req = chat(
        tools=[WEATHER],
        messages=[
            *ASK,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
        ],
    )
    roles = [r for r, _ in req.job.turns]
    assert roles == ["user", "assistant", "user"]  # the tools go with the job
    assert req.job.turns[1][1] == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    )
    assert req.job.turns[2][1] == "<tool_response>\nsunny, 21 C\n</tool_response>"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "not among"),
        ({"tool_choice": "always"}, "tool_choice must be"),
        ({"tools": [WEATHER, WEATHER]}, "distinct"),
        ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "letters, digits"),
        ({"response_format": {"type": "json_object"}, "tool_choice": "required"}, "cannot be"),
    ],
)
def test_bad_tool_requests_are_refused_by_name(extra: dict[str, Any], says: str) -> None:
    with pytest.raises(OpenAIError, match=says):
        chat(**({"tools": [WEATHER]} | extra))


def test_a_tool_message_needs_the_call_it_answers() -> None:
    with pytest.raises(OpenAIError, match="tool_call_id"):
        chat(tools=[WEATHER], messages=[*ASK, {"role": "tool", "content": "x"}])


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        '{"name":"get_weather","arguments":{"city":"Paris"}}',
        '[{"name":"get_weather","arguments":{"city":"Paris"}}]',
        '{"name":"get_weather","arguments":"{\\"city\\": \\"Paris\\"}"}',
    ],
)
def test_calls_are_read_from_tags_bare_json_or_a_list(text: str) -> None:
    calls = tools().calls_in(text)
    assert calls is not None and len(calls) == 1
    assert calls[0]["type"] == "function" and calls[0]["id"].startswith("call_")
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}


@pytest.mark.parametrize(
    "text", ["Paris is sunny.", '{"name": "unknown", "arguments": {}}', "<tool_call>{oops"]
)
def test_anything_else_is_an_answer(text: str) -> None:
    assert tools().calls_in(text) is None


def test_the_stream_passes_plain_text_at_once_and_holds_a_call() -> None:
    plain = CallReader(tools())
    assert plain.feed(" ") == "" and plain.feed("Par") == " Par" and plain.feed("is") == "is"
    assert plain.finish() == ("", None)
    call = CallReader(tools())
    pieces = ["<tool", "_call>\n", '{"name": "get_time", ', '"arguments": {}}', "\n</tool_call>"]
    assert [call.feed(p) for p in pieces] == [""] * len(pieces)
    held, calls = call.finish()
    assert held == "" and calls is not None and calls[0]["function"]["name"] == "get_time"
    unsure = CallReader(tools())
    assert unsure.feed("{not json") == ""
    assert unsure.finish() == ("{not json", None)
