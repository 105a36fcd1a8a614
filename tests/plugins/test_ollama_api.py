"""Ollama's API: request bodies to rbee jobs (what is honoured, what is refused by name),
model names, the NDJSON objects built from a job's events, and the error shape on the
queen's routes. No test here runs a model; features/ollama_api.feature does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
from litestar.testing import TestClient

from rbee_core import create_plugin_manager
from rbee_core.errors import UnknownModel
from rbee_core.events import EventType
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job
from rbee_core.plugins import model_catalog
from rbee_ollama.errors import OllamaError
from rbee_ollama.names import to_ollama, to_rbee
from rbee_ollama.options import UNBOUNDED, UNLOAD_AFTER, parse_keep_alive, parse_options
from rbee_ollama.requests import parse_chat, parse_embed, parse_embeddings, parse_generate
from rbee_ollama.responses import Answer, line
from rbee_ollama.routes import _lines
from rbee_openai.tools import parse_tools
from rbee_queen.app import create_app
from rbee_queen.orchestrator import Queen

CATALOG = model_catalog(create_plugin_manager("queen"))
USER = [{"role": "user", "content": "hi"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def chat(**extra: Any) -> Any:
    return parse_chat({"model": "smollm2:135m", "messages": USER} | extra, CATALOG)


def refused(call: Any, *words: str) -> str:
    with pytest.raises(OllamaError) as caught:
        call()
    assert caught.value.status == 400
    for word in words:
        assert word in caught.value.message, caught.value.message
    return caught.value.message


# -- model names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "rbee"),
    [
        ("smollm2:135m", "smollm2-135m"),
        ("smollm2-135m", "smollm2-135m"),
        ("smollm2-135m:latest", "smollm2-135m"),
        ("markov-demo:latest", "markov-demo"),
        ("markov:demo", "markov:demo"),  # an rbee reference (markov: is a scheme) stays
        ("hf:org/repo", "hf:org/repo"),
        ("http://127.0.0.1:9/m.gguf", "http://127.0.0.1:9/m.gguf"),
        ("llama3", "llama3"),  # unknown, no tag: rbee's own error names it
    ],
)
def test_names_map_onto_rbee(given: str, rbee: str) -> None:
    assert to_rbee(given, CATALOG) == rbee


def test_an_unknown_name_with_a_tag_is_unknown_model_not_a_scheme() -> None:
    with pytest.raises(UnknownModel) as caught:
        to_rbee("llama9:70b", CATALOG)
    assert caught.value.status == 404
    assert "llama9:70b" in caught.value.message and "smollm2-135m" in caught.value.message


@pytest.mark.parametrize("alias", ["smollm2-135m", "markov-demo"])
def test_listed_names_come_back_to_the_alias(alias: str) -> None:
    listed = to_ollama(alias, CATALOG)
    assert ":" in listed
    assert to_rbee(listed, CATALOG) == alias
    assert to_ollama("http://h/m.gguf", CATALOG) == "http://h/m.gguf"


# -- options, format, keep_alive ---------------------------------------------------------


def test_options_map_onto_the_job() -> None:
    req = chat(
        options={
            "temperature": 0,
            "top_p": 0.5,
            "top_k": 7,
            "seed": 3,
            "num_predict": 9,
            "stop": ["\n"],
            "num_ctx": 4096,  # accepted and ignored (options.py says why)
            "num_thread": 2,
            "repeat_penalty": 1.0,
        }
    )
    job = req.job
    assert (job.temperature, job.top_p, job.top_k, job.seed) == (0.0, 0.5, 7, 3)
    assert job.max_tokens == 9 and job.stop == ("\n",)
    assert job.model == "smollm2-135m" and req.model == "smollm2:135m"
    assert req.stream is True  # Ollama streams unless told not to


def test_num_predict_minus_one_is_rbee_default_length() -> None:
    assert parse_options({"num_predict": -1})["max_tokens"] == UNBOUNDED
    assert chat().job.max_tokens == UNBOUNDED == 512


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"num_beams": 4}, ("num_beams",)),
        ({"foo": 1, "bar": 2}, ("bar, foo",)),
        ({"repeat_penalty": 1.3}, ("repeat_penalty",)),
        ({"mirostat": 2}, ("mirostat",)),
        ({"min_p": 0.1}, ("min_p",)),
    ],
)
def test_options_rbee_cannot_honour_are_refused_by_name(
    options: dict[str, Any], words: tuple[str, ...]
) -> None:
    refused(lambda: chat(options=options), *words)


def test_an_option_out_of_range_is_refused_under_its_ollama_name() -> None:
    refused(lambda: chat(options={"num_predict": 0}), "options.num_predict")
    refused(lambda: chat(options={"temperature": 9}), "options.temperature")


def test_format_json_and_a_schema_constrain_the_answer() -> None:
    shape = chat(format="json").job.response_format
    assert shape is not None and shape.kind == "json_object"
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    shape = chat(format=schema).job.response_format
    assert shape is not None and shape.kind == "json_schema"
    assert json.loads(shape.schema or "") == schema
    assert chat(format="").job.response_format is None
    refused(lambda: chat(format="yaml"), "format")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (300, 300.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("300ms", 0.3),
        (0, UNLOAD_AFTER),
        ("0", UNLOAD_AFTER),
        ("0s", UNLOAD_AFTER),
        (-1, -1.0),
        ("-5m", -1.0),
    ],
)
def test_keep_alive_as_ollama_parses_it(value: Any, seconds: float | None) -> None:
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize("value", ["5", "five minutes", "5x", True, [5]])
def test_a_keep_alive_that_is_no_duration_is_refused(value: Any) -> None:
    refused(lambda: parse_keep_alive(value), "keep_alive")


def test_keep_alive_reaches_the_job() -> None:
    assert chat(keep_alive="10m").job.keep_alive == 600.0
    assert chat(keep_alive=0).job.keep_alive == UNLOAD_AFTER
    assert chat(keep_alive=-1).job.keep_alive == -1.0


# -- chat and generate -------------------------------------------------------------------


def test_chat_fields_rbee_cannot_honour_are_refused_by_name() -> None:
    refused(lambda: chat(think=True), "does not support thinking")
    refused(lambda: chat(logprobs=True), "logprobs")
    refused(lambda: chat(frobnicate=1), "frobnicate")
    images = [{"role": "user", "content": "what is this?", "images": ["aGk="]}]
    refused(lambda: chat(messages=images), "images", "text")
    refused(lambda: chat(messages=[]), "messages")
    refused(lambda: parse_chat({"messages": USER}, CATALOG), '"model" is required')
    refused(lambda: chat(stream="yes"), "stream")
    assert chat(think=False, stream=False, tools=[]).stream is False
    assert chat(stream=None).stream is True


def test_a_tool_round_trip_renders_as_hermes_text() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    req = chat(messages=messages, tools=[TOOL])
    assert req.tools is not None and req.tools.choice == "auto"
    rendered = req.job.turns
    assert req.job.tools is not None and req.job.tools[0].name == "get_weather"  # with the job
    assert '"arguments": {"city": "Paris"}' in rendered[1][1]
    assert rendered[2] == ("user", "<tool_response>\nsunny\n</tool_response>")


def test_a_call_arguments_must_be_an_object() -> None:
    bad = [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "x"}}]}]
    refused(lambda: chat(messages=bad), "tool_calls")


def test_generate_uses_the_template_unless_raw() -> None:
    body = {"model": "smollm2:135m", "prompt": "Hi", "system": "Be brief."}
    job = parse_generate(body, CATALOG).job
    assert job.turns == (("system", "Be brief."), ("user", "Hi")) and not job.raw
    raw = parse_generate({"model": "smollm2:135m", "prompt": "Hi", "raw": True}, CATALOG).job
    assert raw.raw and raw.prompt == "Hi" and raw.messages == ()


@pytest.mark.parametrize(
    ("extra", "word"),
    [
        ({"suffix": "end"}, "suffix"),
        ({"template": "{{ .Prompt }}"}, "template"),
        ({"context": [1, 2]}, "context"),
        ({"images": ["aGk="]}, "images"),
        ({"width": 64}, "image models"),
        ({"prompt": ""}, "prompt"),
    ],
)
def test_generate_refuses_what_rbee_cannot_do(extra: dict[str, Any], word: str) -> None:
    body = {"model": "smollm2:135m", "prompt": "Hi"} | extra
    refused(lambda: parse_generate(body, CATALOG), word)


def test_embed_takes_a_string_or_a_list() -> None:
    one = parse_embed({"model": "smollm2:135m", "input": "a"}, CATALOG)
    assert one.job.embed == ("a",) and one.job.model == "smollm2-135m"
    two = parse_embed({"model": "smollm2:135m", "input": ["a", "b"], "truncate": True}, CATALOG)
    assert two.job.embed == ("a", "b")
    old = parse_embeddings({"model": "smollm2:135m", "prompt": "a"}, CATALOG)
    assert old.job.embed == ("a",)
    refused(lambda: parse_embed({"model": "m", "input": []}, CATALOG), "input")
    refused(lambda: parse_embed({"model": "m", "input": "a", "x": 1}, CATALOG), "x")


# -- answers -----------------------------------------------------------------------------


def _finished(text: str, *, prompt_tokens: int = 5) -> Job:
    job = Job(JobRequest(model="smollm2-135m", prompt="hi"))
    job.mark_running("worker-1")
    job.emit(EventType.TOKEN, {"text": text})
    job.emit(
        EventType.END,
        {
            "outcome": "completed",
            "finish_reason": "stop",
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 1,
        },
    )
    return job


def test_a_chat_answer_is_done_with_its_counts_and_durations() -> None:
    job = _finished("Paris.")
    whole = Answer(job, "smollm2:135m", chat=True).whole()
    assert whole["model"] == "smollm2:135m" and whole["created_at"].endswith("Z")
    assert whole["message"] == {"role": "assistant", "content": "Paris."}
    assert whole["done"] is True and whole["done_reason"] == "stop"
    assert (whole["prompt_eval_count"], whole["eval_count"]) == (5, 1)
    for name in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(whole[name], int) and whole[name] >= 0, name
    assert whole["total_duration"] >= whole["eval_duration"]
    part = Answer(job, "m", chat=False).part("Par")
    assert part["response"] == "Par" and part["done"] is False
    assert line(part).endswith(b"\n") and line(part).count(b"\n") == 1


def test_a_call_comes_back_with_arguments_as_an_object() -> None:
    tools = parse_tools({"tools": [TOOL], "tool_choice": "required"})
    job = _finished('{"name": "get_weather", "arguments": {"city": "Paris"}}')
    whole = Answer(job, "m", chat=True, tools=tools).whole()
    (call,) = whole["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert call["function"]["arguments"] == {"city": "Paris"}
    assert whole["message"]["content"] == ""


# -- the routes, in Ollama's error shape -------------------------------------------------


@pytest.fixture
def client() -> Iterator[TestClient[Any]]:
    queen = Queen(create_plugin_manager("queen"))
    app = create_app(queen, stop=lambda: None)
    with TestClient(app, base_url="http://127.0.0.1:8500") as test_client:
        yield test_client
    assert len(queen.jobs) == 0  # nothing here may start a job


JSON = {"Content-Type": "application/json"}


def _post(client: TestClient[Any], path: str, body: Any) -> Any:
    return client.post(path, content=json.dumps(body), headers=JSON)


def test_errors_are_ollama_shaped(client: TestClient[Any]) -> None:
    answer = _post(client, "/api/chat", {"model": "llama9:70b", "messages": USER})
    assert answer.status_code == 404
    assert set(answer.json()) == {"error"} and "llama9:70b" in answer.json()["error"]
    answer = _post(client, "/api/chat", {"model": "smollm2:135m", "messages": USER, "x": 1})
    assert answer.status_code == 400 and answer.json() == {"error": "unsupported field: x"}
    answer = client.post("/api/generate", content=b"{", headers=JSON)
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]
    answer = _post(client, "/api/generate", {"prompt": "hi"})
    assert answer.json() == {"error": '"model" is required'}


def test_copy_create_and_push_are_refused_clearly(client: TestClient[Any]) -> None:
    for path, body in (
        ("/api/copy", {"source": "smollm2:135m", "destination": "mine"}),
        ("/api/create", {"model": "mine", "from": "smollm2:135m"}),
        ("/api/push", {"model": "smollm2:135m"}),
    ):
        answer = _post(client, path, body)
        assert answer.status_code == 501, path
        assert answer.json()["error"].startswith("rbee does not"), answer.json()


def test_version(client: TestClient[Any]) -> None:
    assert client.get("/api/version").json()["version"].count(".") == 2


def test_ps_with_nothing_loaded(client: TestClient[Any]) -> None:
    assert client.get("/api/ps").json() == {"models": []}


# -- streams -----------------------------------------------------------------------------


class _Queen:
    """What ``_lines`` uses of the queen: the cancel of a job whose client left."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def request_cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)


async def _read(lines: Any, count: int | None = None) -> list[dict[str, Any]]:
    out = []
    async for raw in lines:
        out.append(json.loads(raw))
        if count is not None and len(out) == count:
            break
    await lines.aclose()
    return out


def test_a_streamed_call_comes_in_a_part_of_its_own_before_the_last() -> None:
    tools = parse_tools({"tools": [TOOL], "tool_choice": "required"})
    job = _finished('{"name": "get_weather", "arguments": {"city": "Paris"}}')
    queen = _Queen()
    answer = Answer(job, "smollm2:135m", chat=True, tools=tools)
    objects = asyncio.run(_read(_lines(cast("Any", queen), answer)))
    assert [o["done"] for o in objects] == [False, True]
    (call,) = objects[0]["message"]["tool_calls"]
    assert call["function"]["arguments"] == {"city": "Paris"}
    assert objects[1]["done_reason"] == "stop" and objects[1]["message"]["content"] == ""
    assert queen.cancelled == []  # the job had ended


def test_a_client_that_leaves_a_stream_cancels_its_job() -> None:
    job = Job(JobRequest(model="smollm2-135m", prompt="hi"))
    job.mark_running("worker-1")
    job.emit(EventType.TOKEN, {"text": "Once"})
    queen = _Queen()
    objects = asyncio.run(_read(_lines(cast("Any", queen), Answer(job, "m", chat=False)), 1))
    assert objects == [objects[0]] and objects[0]["response"] == "Once"
    assert queen.cancelled == [job.id]
