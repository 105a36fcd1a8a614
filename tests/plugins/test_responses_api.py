"""OpenAI's Responses API (rbee_responses) without a model: request bodies to jobs, what is
refused by name, and the objects and events checked against the openai client's own types.

The route tests answer with a job whose events are written by the test (the queen's submit
is replaced), so the whole HTTP path runs, through the official client, with no worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from litestar.testing import TestClient
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from rbee_core import create_plugin_manager
from rbee_core.events import EventType
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job
from rbee_openai.errors import OpenAIError
from rbee_queen.app import create_app
from rbee_queen.orchestrator import Queen
from rbee_responses.events import ResponseEvents
from rbee_responses.objects import ResponseShape
from rbee_responses.requests import ResponsesRequest, parse_responses

BASE = {"model": "m", "input": "hi"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
EVENT = TypeAdapter(ResponseStreamEvent)


def parse(**extra: Any) -> ResponsesRequest:
    return parse_responses(BASE | extra)


def refused(body: dict[str, Any]) -> OpenAIError:
    with pytest.raises(OpenAIError) as caught:
        parse_responses(body)
    assert caught.value.status == 400
    return caught.value


# -- requests ----------------------------------------------------------------------------


def test_a_string_input_with_instructions_and_sampling() -> None:
    req = parse(instructions="Be brief.", max_output_tokens=7, temperature=0, top_p=0.5)
    job = req.chat.job
    assert job.turns == (("system", "Be brief."), ("user", "hi"))
    assert job.prompt == "hi"
    assert (job.max_tokens, job.temperature, job.top_p) == (7, 0.0, 0.5)
    assert not req.chat.stream and req.chat.tools is None
    assert req.echo["instructions"] == "Be brief." and req.echo["max_output_tokens"] == 7


def test_defaults() -> None:
    req = parse()
    assert req.chat.job.max_tokens == 512  # as a chat completion's
    assert req.echo["text"] == {"format": {"type": "text"}}
    assert req.echo["tool_choice"] == "auto" and req.echo["tools"] == []


def test_message_items_with_parts_and_roles() -> None:
    req = parse(
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hel"},
                                                            {"type": "input_text", "text": "lo"}]},
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Bonjour", "annotations": []}],
            },
            {"role": "user", "content": "Again"},
        ]
    )  # fmt: skip
    assert req.chat.job.turns == (
        ("system", "Answer in French."),
        ("user", "Hello"),
        ("assistant", "Bonjour"),
        ("user", "Again"),
    )


def test_a_function_call_round_trip_is_rendered_as_a_chat_one() -> None:
    req = parse(
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
                "status": "completed",
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
    )
    roles = [role for role, _ in req.chat.job.turns]
    assert roles == ["user", "assistant", "user"]
    assert req.chat.job.tools is not None and req.chat.job.tools[0].name == "get_weather"
    assert req.chat.job.turns[1][1] == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    )
    assert req.chat.job.turns[2][1] == "<tool_response>\nsunny\n</tool_response>"
    assert req.chat.job.response_format is None  # "auto": the model may answer


def test_calls_made_together_are_one_assistant_turn() -> None:
    call = {"type": "function_call", "name": "get_weather", "arguments": "{}"}
    req = parse(
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Paris and Rome?"},
            call | {"call_id": "a"},
            call | {"call_id": "b"},
            {"type": "function_call_output", "call_id": "a", "output": "sunny"},
            {"type": "function_call_output", "call_id": "b", "output": [
                {"type": "input_text", "text": "rain"}]},
        ],
    )  # fmt: skip
    messages = req.chat.job.turns
    assert [role for role, _ in messages] == ["user", "assistant", "user", "user"]
    assert messages[1][1].count("<tool_call>") == 2
    assert "rain" in messages[3][1]


def test_flat_tools_and_a_required_choice_hold_the_answer_to_a_call() -> None:
    req = parse(tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    tools = req.chat.tools
    assert tools is not None and tools.forced and not tools.parallel
    assert tools.functions[0]["name"] == "get_weather"
    form = req.chat.job.response_format
    assert form is not None and form.kind == "json_schema"
    assert '"const":"get_weather"' in (form.schema or "")
    assert req.echo["tools"] == [WEATHER] and req.echo["parallel_tool_calls"] is False


def test_a_named_function_choice() -> None:
    req = parse(tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"})
    assert req.chat.tools is not None and req.chat.tools.choice == "get_weather"


@pytest.mark.parametrize(
    ("form", "kind"),
    [
        ({"type": "text"}, None),
        ({"type": "json_object"}, "json_object"),
        (
            {
                "type": "json_schema",
                "name": "city",
                "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                "strict": True,
                "description": "a city",
            },
            "json_schema",
        ),
    ],
)
def test_text_format_is_response_format(form: dict[str, Any], kind: str | None) -> None:
    req = parse(text={"format": form})
    job_format = req.chat.job.response_format
    assert (job_format.kind if job_format else None) == kind
    if kind == "json_schema":
        assert job_format is not None and job_format.strict and job_format.name == "city"
    assert req.echo["text"] == {"format": form}


@pytest.mark.parametrize(
    "extra",
    [
        {"store": True},
        {"store": False},
        {"metadata": {"a": "b"}, "user": "u", "safety_identifier": "s"},
        {"include": [], "truncation": "disabled", "background": False, "reasoning": None},
        {"previous_response_id": None, "prompt_cache_key": "k", "service_tier": "auto"},
        {"stream_options": {"include_obfuscation": False}, "stream": True},
    ],
)
def test_fields_that_change_nothing_are_accepted(extra: dict[str, Any]) -> None:
    parse(**extra)


@pytest.mark.parametrize(
    ("extra", "param", "says"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "stateless"),
        ({"conversation": "conv_1"}, "conversation", "conversations"),
        ({"reasoning": {"effort": "low"}}, "reasoning", "reason"),
        ({"include": ["reasoning.encrypted_content"]}, "include", "include"),
        ({"background": True}, "background", "foreground"),
        ({"truncation": "auto"}, "truncation", "drops"),
        ({"top_logprobs": 2}, "top_logprobs", "log probabilities"),
        ({"prompt": {"id": "p"}}, "prompt", "prompt"),
        ({"frequency_penalty": 1}, "frequency_penalty", "frequency_penalty"),
        ({"tools": [{"type": "web_search"}]}, "tools", "web_search"),
        ({"tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools", "file_search"),
        ({"tools": [WEATHER | {"defer_loading": True}]}, "tools", "defer_loading"),
        ({"tools": [WEATHER | {"name": "a b"}]}, "tools", "tools[0].name must be"),
        ({"tools": [WEATHER, WEATHER]}, "tools", "distinct"),
        ({"tools": [WEATHER], "tool_choice": {"type": "web_search_preview"}}, "tool_choice", ""),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "name": "x"}}, "tool_choice",
         "not among"),
        ({"tool_choice": "required"}, "tool_choice", "tools"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format", "text.format"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format", "schema"),
        ({"text": {"verbosity": "low"}}, "text.verbosity", "verbosity"),
        ({"tools": [WEATHER], "tool_choice": "required", "text": {"format": {"type":
          "json_object"}}}, "text.format", "text.format cannot"),
        ({"max_output_tokens": 0}, "max_output_tokens", "max_output_tokens"),
        ({"temperature": 5}, "temperature", "temperature"),
        ({"input": []}, "input", "input"),
        ({"input": 3}, "input", "input"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "role"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "u"}]}]},
         "input[0].content", "text models"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "stored"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type", "reasoning"),
        ({"input": [{"type": "web_search_call"}]}, "input[0].type", "web_search_call"),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
         "input[0].call_id", "call_id"),
        ({"instructions": 3}, "instructions", "string"),
        ({"model": ""}, "model", "model"),
    ],
)  # fmt: skip
def test_what_rbee_cannot_do_is_refused_by_name(
    extra: dict[str, Any], param: str, says: str
) -> None:
    error = refused(BASE | extra)
    assert error.param == param, error.message
    assert says in error.message, error.message


def test_a_body_that_is_not_an_object() -> None:
    assert refused([]).param is None  # type: ignore[arg-type]


# -- objects and events --------------------------------------------------------------------


def job_of(req: ResponsesRequest) -> Job:
    return Job(request=req.chat.job)


def end(job: Job, finish: str = "stop", outcome: str = "completed") -> dict[str, Any]:
    return {
        "outcome": outcome,
        "finish_reason": finish,
        "prompt_tokens": 12,
        "completion_tokens": 3,
        "cached_tokens": 4,
    }


def run(
    req: ResponsesRequest,
    tokens: list[str],
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> tuple[ResponseEvents, list[dict[str, Any]]]:
    job = job_of(req)
    events = ResponseEvents(ResponseShape(job, req.echo), req.chat.tools)
    out = events.start()
    for token in tokens:
        out += events.token(token)
    out += events.fail(error) if error is not None else events.end(result or end(job))
    for i, event in enumerate(out):
        EVENT.validate_python(event)  # the openai client's own types, strictly
        assert event["sequence_number"] == i
    return events, out


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def test_a_text_answer_streams_in_openais_order() -> None:
    events, out = run(parse(), ["Hel", "lo"])
    assert types(out) == TEXT_EVENTS
    deltas = "".join(e["delta"] for e in out if e["type"] == "response.output_text.delta")
    final = Response.model_validate(out[-1]["response"])
    assert final.output_text == deltas == "Hello"
    assert final.status == "completed" and final.incomplete_details is None
    assert final.id.startswith("resp_") and (final.output[0].id or "").startswith("msg_")
    assert out[0]["response"]["status"] == "in_progress" and out[0]["response"]["output"] == []
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (
        12, 3, 15,
    )  # fmt: skip
    assert final.usage.input_tokens_details.cached_tokens == 4
    assert events.final == out[-1]["response"]


def test_the_response_id_names_the_job() -> None:
    req = parse()
    job = job_of(req)
    assert ResponseShape(job, req.echo).id == "resp_" + job.id.removeprefix("job-")


def test_an_answer_cut_at_max_output_tokens_is_incomplete() -> None:
    _, out = run(parse(max_output_tokens=2), ["Hel", "lo"], {"finish_reason": "length"})
    assert out[-1]["type"] == "response.incomplete"
    final = Response.model_validate(out[-1]["response"])
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens"
    assert final.output[0].status == "incomplete"  # type: ignore[union-attr]


def test_an_empty_answer_is_an_empty_message() -> None:
    _, out = run(parse(), [])
    final = Response.model_validate(out[-1]["response"])
    assert final.output_text == "" and len(final.output) == 1


def test_a_forced_call_streams_as_a_function_call_item() -> None:
    req = parse(tools=[WEATHER], tool_choice="required")
    _, out = run(req, ['[{"name": "get_weather", ', '"arguments": {"city": "Paris"}}]'])
    assert types(out) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert out[2]["item"]["status"] == "in_progress" and out[2]["item"]["arguments"] == ""
    final = Response.model_validate(out[-1]["response"])
    (call,) = final.output
    assert call.type == "function_call"
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id.startswith("call_") and call.id and call.id.startswith("fc_")
    assert out[3]["delta"] == out[4]["arguments"] == call.arguments


def test_text_under_auto_passes_at_once() -> None:
    _, out = run(parse(tools=[WEATHER]), ["It is", " sunny"])
    assert types(out) == TEXT_EVENTS
    assert out[4]["delta"] == "It is"


def test_a_call_under_auto_is_held_and_read_at_the_end() -> None:
    tokens = [
        "<tool_call>",
        '{"name": "get_weather", "arguments": {"city": "Rome"}}',
        "</tool_call>",
    ]
    _, out = run(parse(tools=[WEATHER]), tokens)
    assert "response.output_text.delta" not in types(out)
    assert Response.model_validate(out[-1]["response"]).output[0].type == "function_call"


def test_a_failed_job_ends_the_stream_with_response_failed() -> None:
    _, out = run(parse(), ["Hel"], error={"code": "worker_lost", "message": "gone"})
    assert types(out)[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.failed",
    ]
    final = Response.model_validate(out[-1]["response"])
    assert final.status == "failed" and final.error is not None
    assert "gone" in final.error.message and "worker_lost" in final.error.message


def test_a_cancelled_job_is_a_cancelled_response() -> None:
    _, out = run(parse(), ["Hel"], {"outcome": "cancelled", "finish_reason": "cancelled"})
    assert out[-1]["type"] == "response.failed"
    assert Response.model_validate(out[-1]["response"]).status == "cancelled"


# -- the route -----------------------------------------------------------------------------


class Api:
    def __init__(self, client: TestClient[Any], queen: Queen) -> None:
        self.client = client
        self.queen = queen
        self.tokens: list[str] = []
        self.submitted: list[Job] = []

    def submit(self, request: JobRequest) -> Job:
        """The queen's submit, with a job that answers ``tokens`` at once."""
        job = Job(request=request)
        for token in self.tokens:
            job.emit(EventType.TOKEN, {"text": token})
        job.emit(EventType.END, end(job))
        self.submitted.append(job)
        return job


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    queen = Queen(create_plugin_manager("queen"))
    app = create_app(queen, stop=lambda: None)
    with TestClient(app, base_url="http://127.0.0.1:8500") as client:
        api = Api(client, queen)
        monkeypatch.setattr(queen, "submit", api.submit)
        yield api


def openai_client(api: Api) -> openai.OpenAI:
    return openai.OpenAI(
        base_url="http://127.0.0.1:8500/v1",
        api_key="x",
        http_client=api.client,  # type: ignore[arg-type]  # an httpx.Client into the app
        max_retries=0,
    )


def test_the_client_creates_a_response(api: Api) -> None:
    api.tokens = ["Par", "is"]
    raw = openai_client(api).responses.with_raw_response.create(model="m", input="Capital?")
    response = raw.parse()
    (job,) = api.submitted
    assert raw.headers["x-rbee-job-id"] == job.id
    assert response.id == "resp_" + job.id.removeprefix("job-")
    assert response.output_text == "Paris" and response.status == "completed"


def test_the_client_streams_a_response(api: Api) -> None:
    api.tokens = ["Par", "is"]
    stream = openai_client(api).responses.create(model="m", input="Capital?", stream=True)
    events = list(stream)
    assert [e.type for e in events] == TEXT_EVENTS
    assert events[-1].response.output_text == "Paris"  # type: ignore[union-attr]


def test_the_sse_lines_name_each_event(api: Api) -> None:
    api.tokens = ["Hi"]
    body = json.dumps(BASE | {"stream": True})
    response = api.client.post(
        "/v1/responses", content=body, headers={"Content-Type": "application/json"}
    )
    blocks = [b for b in response.text.split("\r\n\r\n") if b.strip()]
    assert len(blocks) == len(TEXT_EVENTS) - 1  # one delta
    for block in blocks:
        event, data = block.splitlines()
        assert event.removeprefix("event: ") == json.loads(data.removeprefix("data: "))["type"]
    assert "[DONE]" not in response.text  # the Responses stream ends with its last event


def test_refusals_are_openai_errors_the_client_raises(api: Api) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client(api).responses.create(model="m", input="x", previous_response_id="resp_1")
    assert caught.value.status_code == 400
    body: Any = caught.value.body
    assert body["param"] == "previous_response_id" and body["type"] == "invalid_request_error"
    assert not api.submitted


def test_the_chat_routes_still_answer_beside_it(api: Api) -> None:
    response = api.client.get("/v1/models")
    assert response.status_code == 200 and response.json()["object"] == "list"


def test_the_clients_stream_helper_accumulates_the_events(api: Api) -> None:
    api.tokens = ["Par", "is"]
    with openai_client(api).responses.stream(model="m", input="Capital?") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert texts == ["Par", "is"] and final.output_text == "Paris"


def test_the_client_streams_a_forced_call(api: Api) -> None:
    api.tokens = ['{"name": "get_weather", "arguments": {"city": "Paris"}}']
    with openai_client(api).responses.stream(
        model="m",
        input="Weather?",
        tools=[WEATHER],
        tool_choice="required",  # type: ignore[list-item]
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    (call,) = final.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert "".join(deltas) == call.arguments == '{"city": "Paris"}'
