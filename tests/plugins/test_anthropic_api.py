"""Anthropic's Messages API on the queen, without a model: request bodies to jobs (and what
is refused by name), the message object, the streamed events in Anthropic's order, and
errors in Anthropic's shape. The jobs here are run by a stand-in for the queen's submit
that plays a worker's events; the behave suite runs the real model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from rbee_anthropic.errors import AnthropicError, error_type
from rbee_anthropic.requests import parse_count_tokens, parse_messages
from rbee_anthropic.responses import Blocks, message, stop_reason, usage
from rbee_anthropic.routes import _stream
from rbee_core import create_plugin_manager
from rbee_core.events import EventType
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job
from rbee_queen.app import create_app
from rbee_queen.orchestrator import Queen

USER = [{"role": "user", "content": "hi"}]
BODY: dict[str, Any] = {"model": "m", "max_tokens": 16, "messages": USER}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def refused(body: Any, *named: str) -> str:
    with pytest.raises(AnthropicError) as caught:
        parse_messages(body)
    for text in named:
        assert text in caught.value.message, caught.value.message
    assert caught.value.status == 400
    return caught.value.message


# Requests


def test_system_messages_and_sampling_map_onto_the_job() -> None:
    req = parse_messages(
        {
            "model": "m",
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "x"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
                {"role": "assistant", "content": "Hi!"},
                {"role": "user", "content": "Bye"},
            ],
            "max_tokens": 7,
            "temperature": 0,
            "top_p": 0.5,
            "top_k": 3,
            "stop_sequences": ["###"],
            "metadata": {"user_id": "u"},
            "stream": True,
        }
    )
    assert req.stream and req.tools is None
    job = req.job
    assert job.turns == (
        ("system", "Be brief."),
        ("user", "Hello"),
        ("assistant", "Hi!"),
        ("user", "Bye"),
    )
    assert job.prompt == "Bye"  # for backends without a chat template
    assert (job.max_tokens, job.temperature, job.top_p, job.top_k, job.stop) == (
        7, 0.0, 0.5, 3, ("###",),
    )  # fmt: skip


def test_max_tokens_is_required_as_anthropic_requires_it() -> None:
    refused({"model": "m", "messages": USER}, "max_tokens")
    refused(BODY | {"max_tokens": 100_000}, "max_tokens", "4096")


@pytest.mark.parametrize(
    "field", ["mcp_servers", "container", "context_management", "inference_geo", "n"]
)
def test_fields_rbee_cannot_honour_are_refused_by_name(field: str) -> None:
    assert refused(BODY | {field: {}}).startswith(f"{field}:")


def test_thinking_is_refused_unless_disabled() -> None:
    refused(BODY | {"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking")
    assert parse_messages(BODY | {"thinking": {"type": "disabled"}}).job.max_tokens == 16


@pytest.mark.parametrize("kind", ["image", "document"])
def test_image_and_document_blocks_are_refused_clearly(kind: str) -> None:
    block = {"type": kind, "source": {"type": "base64", "media_type": "x", "data": ""}}
    content = [{"type": "text", "text": "What is this?"}, block]
    message = refused(BODY | {"messages": [{"role": "user", "content": content}]})
    assert (
        message
        == f"messages[0].content[1]: {kind} blocks are not supported: rbee serves text models"
    )


def test_a_trailing_assistant_turn_is_refused() -> None:
    messages = [*USER, {"role": "assistant", "content": "The answer is"}]
    refused(BODY | {"messages": messages}, "prefill")


def test_tool_use_and_tool_result_become_the_calls_and_results_of_the_conversation() -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1"}
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."}, call]},
        {
            "role": "user",
            "content": [
                result | {"content": [{"type": "text", "text": "sunny"}]},
                result | {"tool_use_id": "toolu_2", "content": "no such city", "is_error": True},
                {"type": "text", "text": "And so?"},
            ],
        },
    ]
    req = parse_messages(BODY | {"messages": messages, "tools": [WEATHER]})
    roles = [role for role, _ in req.job.turns]
    assert roles == ["user", "assistant", "user", "user", "user"]  # the tools go with the job
    _, assistant, first, second, last = (text for _, text in req.job.turns)
    assert req.job.tools is not None and req.job.tools[0].name == "get_weather"
    assert assistant.startswith("Let me look.\n<tool_call>")
    assert '{"name": "get_weather", "arguments": {"city": "Paris"}}' in assistant
    assert first == "<tool_response>\nsunny\n</tool_response>"
    assert second == "<tool_response>\nError: no such city\n</tool_response>"
    assert last == "And so?" == req.job.prompt
    assert req.tools is not None and req.tools.choice == "auto" and not req.job.response_format


@pytest.mark.parametrize(
    ("choice", "openai", "single"),
    [
        ({"type": "auto"}, "auto", False),
        ({"type": "any"}, "required", False),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", True),
        ({"type": "tool", "name": "get_weather"}, "get_weather", False),
        ({"type": "none"}, "none", False),
    ],
)
def test_tool_choice_maps_onto_openais(choice: Any, openai: str, single: bool) -> None:
    req = parse_messages(BODY | {"tools": [WEATHER], "tool_choice": choice})
    assert req.tools is not None and req.tools.choice == openai
    assert req.single_call == single
    constrained = req.job.response_format
    assert (constrained is not None) == (openai in ("required", "get_weather"))
    if constrained is not None and constrained.schema is not None:
        schema = json.loads(constrained.schema)
        assert ("items" in schema) == (openai == "required" and not single)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        ({"tools": [WEATHER | {"input_examples": []}]}, "tools[0].input_examples"),
        ({"tools": [WEATHER, WEATHER]}, "distinct"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": "auto"}, "tool_choice"),
        ({"stop_sequences": "###"}, "stop_sequences"),
        ({"stop_sequences": ["x"] * 9}, "stop_sequences"),
        ({"output_config": {"effort": "high"}}, "output_config.effort"),
    ],
)
def test_bad_tools_and_fields_are_refused_naming_them(extra: Any, named: str) -> None:
    refused(BODY | extra, named)


def test_output_config_format_is_a_constrained_answer() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    req = parse_messages(
        BODY | {"output_config": {"format": {"type": "json_schema", "schema": schema}}}
    )
    assert req.job.response_format is not None and req.job.response_format.strict


def test_count_tokens_is_a_one_token_job_of_the_same_conversation() -> None:
    body = {"model": "m", "system": "S", "messages": USER, "tools": [WEATHER]}
    job = parse_count_tokens(body | {"tool_choice": {"type": "any"}})
    created = parse_messages(body | {"max_tokens": 9, "tool_choice": {"type": "any"}}).job
    assert job.messages == created.messages and job.max_tokens == 1
    assert job.response_format is None  # a constraint adds no prompt tokens
    with pytest.raises(AnthropicError, match="max_tokens"):
        parse_count_tokens(body | {"max_tokens": 9})


# Responses


def finished(text: str, **end: Any) -> Job:
    job = Job(JobRequest(model="m", prompt="hi"))
    if text:
        job.emit(EventType.TOKEN, {"text": text})
    data = {"outcome": "completed", "finish_reason": "stop", "prompt_tokens": 10}
    job.emit(EventType.END, data | {"completion_tokens": 2} | end)
    return job


def test_a_message_has_anthropics_shape() -> None:
    job = finished("Hello", cached_tokens=4)
    body = message(job, None, False)
    assert (
        body["id"].startswith("msg_") and job.id.removeprefix("job-").replace("-", "") in body["id"]
    )
    assert body | {"id": "x"} == {
        "id": "x",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 6,
            "output_tokens": 2,
            "cache_read_input_tokens": 4,
            "cache_creation_input_tokens": 0,
        },
    }


def test_stop_reasons() -> None:
    assert stop_reason({"finish_reason": "length"}, False) == ("max_tokens", None)
    assert stop_reason({"finish_reason": "stop", "stop_sequence": "##"}, False) == (
        "stop_sequence",
        "##",
    )
    assert stop_reason({"finish_reason": "stop"}, False) == ("end_turn", None)
    assert stop_reason({"finish_reason": "stop"}, True) == ("tool_use", None)
    assert usage({})["input_tokens"] == 0


def test_a_tool_call_answer_is_tool_use_blocks() -> None:
    req = parse_messages(BODY | {"tools": [WEATHER], "tool_choice": {"type": "any"}})
    job = finished('[{"name": "get_weather", "arguments": {"city": "Paris"}}]')
    body = message(job, req.tools, req.single_call)
    assert body["stop_reason"] == "tool_use"
    (block,) = body["content"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_")
    assert (block["name"], block["input"]) == ("get_weather", {"city": "Paris"})


# Routes, with a stand-in that plays a worker's events for each submitted job


class Played:
    """What the stand-in's jobs answer: tokens then an end, or an error event."""

    def __init__(self) -> None:
        self.tokens = ["Hel", "lo"]
        self.end: dict[str, Any] = {"finish_reason": "stop", "prompt_tokens": 12}
        self.error: dict[str, Any] | None = None
        self.jobs: list[Job] = []


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient[Any], Played]]:
    queen = Queen(create_plugin_manager("queen"))
    played = Played()
    checked = queen.submit

    def submit(request: JobRequest) -> Job:
        if request.model != "m":
            return checked(request)  # the queen's own refusals (an unknown model)
        job = queen.jobs.create(request)
        played.jobs.append(job)

        async def play() -> None:
            for text in played.tokens:
                await asyncio.sleep(0)
                job.emit(EventType.TOKEN, {"text": text})
            if played.error is not None:
                job.emit(EventType.ERROR, played.error)
            else:
                end = {"outcome": "completed", "completion_tokens": len(played.tokens)}
                job.emit(EventType.END, end | played.end)

        asyncio.get_running_loop().create_task(play())
        return job

    monkeypatch.setattr(queen, "submit", submit)
    app = create_app(queen, stop=lambda: None)
    with TestClient(app, base_url="http://127.0.0.1:8500") as client:
        yield client, played


HEADERS = {"Content-Type": "application/json", "anthropic-version": "2023-06-01"}


def post(client: TestClient[Any], path: str, body: Any) -> Any:
    return client.post(path, content=json.dumps(body), headers=HEADERS)


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.replace("\r\n", "\n").strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def test_a_message_is_a_job_answered_in_anthropics_shape(api: Any) -> None:
    client, played = api
    response = post(client, "/v1/messages", BODY | {"stop_sequences": ["!"]})
    assert response.status_code == 200, response.text
    (job,) = played.jobs
    assert response.headers["x-rbee-job-id"] == job.id == response.headers["request-id"]
    body = response.json()
    assert body["content"] == [{"type": "text", "text": "Hello"}]
    assert body["usage"]["input_tokens"] == 12 and body["usage"]["output_tokens"] == 2


def test_a_stream_comes_in_anthropics_event_order(api: Any) -> None:
    client, played = api
    played.end |= {"stop_sequence": "!"}
    response = post(client, "/v1/messages", BODY | {"stream": True, "stop_sequences": ["!"]})
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response.text)
    assert [kind for kind, _ in got] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == kind for kind, data in got)
    assert got[0][1]["message"]["content"] == [] and got[0][1]["message"]["stop_reason"] is None
    assert got[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert "".join(d["delta"]["text"] for k, d in got if k == "content_block_delta") == "Hello"
    assert got[6][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "!"}
    assert got[6][1]["usage"]["output_tokens"] == 2 and got[6][1]["usage"]["input_tokens"] == 12


def test_a_streamed_tool_call_is_a_tool_use_block_with_its_input_as_json(api: Any) -> None:
    client, played = api
    played.tokens = ['{"name": "get_weather", ', '"arguments": {"city": "Paris"}}']
    choice = {"type": "tool", "name": "get_weather"}
    body = BODY | {"stream": True, "tools": [WEATHER], "tool_choice": choice}
    got = events(post(client, "/v1/messages", body).text)
    kinds = [kind for kind, _ in got]
    assert kinds[2:] == [
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    block = got[2][1]["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather" and block["input"] == {}
    assert block["id"].startswith("toolu_")
    delta = got[3][1]["delta"]
    assert delta["type"] == "input_json_delta"
    assert json.loads(delta["partial_json"]) == {"city": "Paris"}
    assert got[5][1]["delta"]["stop_reason"] == "tool_use"


def test_a_failed_job_is_an_error_in_anthropics_shape(api: Any) -> None:
    client, played = api
    played.error = {"code": "no_placement", "message": "no hive can run the job"}
    response = post(client, "/v1/messages", BODY)
    assert response.status_code == 503
    assert response.json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "no hive can run the job"},
    }
    got = events(post(client, "/v1/messages", BODY | {"stream": True}).text)
    assert got[-1] == ("error", response.json())


def test_refusals_and_unknown_models_come_in_anthropics_shape(api: Any) -> None:
    client, _ = api
    response = post(client, "/v1/messages", BODY | {"mcp_servers": []})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "mcp_servers: not supported by rbee",
    }
    response = post(client, "/v1/messages", BODY | {"model": "claude-nope"})
    assert response.status_code == 404
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "not_found_error"
    response = client.post("/v1/messages", content=b"{", headers=HEADERS)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_count_tokens_answers_the_workers_prompt_count(api: Any) -> None:
    client, played = api
    response = post(client, "/v1/messages/count_tokens", {"model": "m", "messages": USER})
    assert response.status_code == 200, response.text
    assert response.json() == {"input_tokens": 12}
    (job,) = played.jobs
    assert job.request.max_tokens == 1


def test_the_openai_routes_keep_their_own_error_shape(api: Any) -> None:
    client, _ = api
    response = post(client, "/v1/chat/completions", {"model": "m", "messages": USER, "x": 1})
    assert response.status_code == 400
    assert set(response.json()) == {"error"} and response.json()["error"]["param"] == "x"


def test_error_types_by_status() -> None:
    assert [error_type(s) for s in (400, 401, 404, 409, 429, 500, 502, 503, 504, 529)] == [
        "invalid_request_error",
        "authentication_error",
        "not_found_error",
        "invalid_request_error",
        "rate_limit_error",
        "api_error",
        "api_error",
        "overloaded_error",
        "timeout_error",
        "overloaded_error",
    ]


def test_the_beta_clients_query_and_headers_change_nothing(api: Any) -> None:
    client, _ = api
    headers = HEADERS | {"anthropic-beta": "some-feature-2025-01-01"}
    response = client.post("/v1/messages?beta=true", content=json.dumps(BODY), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["content"] == [{"type": "text", "text": "Hello"}]


def test_a_client_that_leaves_a_stream_cancels_its_job() -> None:
    cancelled: list[str] = []

    class Queen:
        def request_cancel(self, job_id: str) -> None:
            cancelled.append(job_id)

    req = parse_messages(BODY | {"stream": True})
    job = Job(req.job)
    job.emit(EventType.TOKEN, {"text": "Hel"})

    async def leave_after_the_first_text() -> list[bytes]:
        stream = _stream(Queen(), Blocks(job), req)  # type: ignore[arg-type]
        got = [await anext(stream), await anext(stream)]
        await stream.aclose()  # what the server does when the client goes away
        return got

    start, text = asyncio.run(leave_after_the_first_text())
    assert start.startswith(b"event: message_start") and b"text_delta" in text
    assert cancelled == [job.id]


def test_a_missing_key_is_an_authentication_error_in_anthropics_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RBEE_API_KEY", "s3cret")
    app = create_app(Queen(create_plugin_manager("queen")), stop=lambda: None)
    with TestClient(app, base_url="http://127.0.0.1:8500") as client:
        for path in ("/v1/messages", "/v1/messages/count_tokens"):
            response = post(client, path, BODY)
            assert response.status_code == 401
            assert response.json()["type"] == "error"
            assert response.json()["error"]["type"] == "authentication_error"
            assert "x-api-key" in response.json()["error"]["message"]
        # The other routes keep rbee's shape (and OpenAI's clients read it as theirs).
        response = post(client, "/v1/chat/completions", {"model": "m"})
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
        headers = HEADERS | {"Origin": "https://evil.example", "x-api-key": "s3cret"}
        response = client.post("/v1/messages", content=json.dumps(BODY), headers=headers)
        assert response.status_code == 403
        assert response.json()["error"]["type"] == "permission_error"
