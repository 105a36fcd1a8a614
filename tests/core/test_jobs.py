"""JobRequest validation and the Job state machine."""

from __future__ import annotations

from typing import Any

import pytest

from rbee_core.errors import InvalidRequest
from rbee_core.events import EventType
from rbee_core.job_request import LIMITS, MAX_PROMPT_CHARS, MAX_STOP_SEQUENCES, JobRequest
from rbee_core.jobs import Job, JobState, new_job_id

BASE = {"model": "tiny", "prompt": "Hello"}


def request(**fields: Any) -> JobRequest:
    return JobRequest.from_json({**BASE, **fields})


def rejected(payload: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        JobRequest.from_json(payload)
    assert info.value.code == "invalid_request"
    assert info.value.status == 400
    return info.value


# --- JobRequest: defaults and accepted values -------------------------------------------


def test_defaults() -> None:
    req = JobRequest.from_json({"model": "tiny", "prompt": "Hello"})
    assert req == JobRequest(model="tiny", prompt="Hello")
    assert req.max_tokens == 128
    assert req.temperature == 0.7
    assert req.top_p == 1.0
    assert req.top_k == 0
    assert req.seed is None
    assert req.stop == ()
    assert req.raw is False


def test_null_values_mean_defaults() -> None:
    req = request(max_tokens=None, temperature=None, top_p=None, top_k=None, seed=None,
                  stop=None, raw=None)  # fmt: skip
    assert req == JobRequest(model="tiny", prompt="Hello")


def test_every_field_set() -> None:
    req = request(max_tokens=64, temperature=0.0, top_p=0.9, top_k=40, seed=7, stop=["\n"],
                  raw=True)  # fmt: skip
    assert req == JobRequest(
        model="tiny", prompt="Hello", max_tokens=64, temperature=0.0, top_p=0.9, top_k=40,
        seed=7, stop=("\n",), raw=True,
    )  # fmt: skip


def test_model_is_stripped_prompt_is_not() -> None:
    req = request(model="  tiny \n", prompt="  Hi  ")
    assert req.model == "tiny"
    assert req.prompt == "  Hi  "


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_tokens", 1),
        ("max_tokens", 4096),
        ("temperature", 0),
        ("temperature", 2),
        ("temperature", 2.0),
        ("top_p", 1),
        ("top_p", 1e-9),
        ("top_k", 0),
        ("top_k", 1_000_000),
        ("seed", 0),
        ("seed", 2**63 - 1),
    ],
)
def test_bounds_are_inclusive(name: str, value: float) -> None:
    assert getattr(request(**{name: value}), name) == value


@pytest.mark.parametrize("name", ["temperature", "top_p"])
def test_float_fields_accept_integers_and_store_floats(name: str) -> None:
    value = getattr(request(**{name: 1}), name)
    assert value == 1.0
    assert isinstance(value, float)


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("END", ("END",)),
        (["a"], ("a",)),
        (["a", "bb", "\n\n"], ("a", "bb", "\n\n")),
        (["s"] * MAX_STOP_SEQUENCES, ("s",) * MAX_STOP_SEQUENCES),
        ([], ()),
    ],
)
def test_stop_as_string_or_list(stop: Any, expected: tuple[str, ...]) -> None:
    assert request(stop=stop).stop == expected


@pytest.mark.parametrize("raw", [True, False])
def test_raw(raw: bool) -> None:
    assert request(raw=raw).raw is raw


def test_prompt_at_the_length_limit() -> None:
    assert len(request(prompt="x" * MAX_PROMPT_CHARS).prompt) == MAX_PROMPT_CHARS


def test_to_json_round_trips() -> None:
    req = request(max_tokens=5, temperature=0.1, top_p=0.5, top_k=3, seed=1, stop=["x", "y"],
                  raw=True)  # fmt: skip
    data = req.to_json()
    assert data == {
        "model": "tiny", "prompt": "Hello", "max_tokens": 5, "temperature": 0.1, "top_p": 0.5,
        "top_k": 3, "seed": 1, "stop": ["x", "y"], "raw": True,
    }  # fmt: skip
    assert JobRequest.from_json(data) == req


def test_request_is_immutable() -> None:
    req = request()
    with pytest.raises(AttributeError):
        req.max_tokens = 3  # type: ignore[misc]


# --- JobRequest: rejected bodies -------------------------------------------------------------


@pytest.mark.parametrize("payload", [None, [], [BASE], "text", 3, 1.5, True])
def test_body_must_be_an_object(payload: Any) -> None:
    exc = rejected(payload)
    assert exc.field is None
    assert "must be a JSON object" in exc.message
    assert type(payload).__name__ in exc.message


def test_unknown_field() -> None:
    exc = rejected({**BASE, "max_token": 5})
    assert exc.field == "max_token"
    assert "unknown field 'max_token'" in exc.message
    for name in ("model", "prompt", "max_tokens", "temperature", "stop", "raw"):
        assert name in exc.message


def test_first_unknown_field_is_named_alphabetically() -> None:
    assert rejected({**BASE, "zeta": 1, "alpha": 2}).field == "alpha"


def test_unknown_field_reported_before_missing_fields() -> None:
    assert rejected({"stream": True}).field == "stream"


@pytest.mark.parametrize("name", ["model", "prompt"])
@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "is required"),
        ("", "must not be empty"),
        ("   \n\t", "must not be empty"),
        (5, "must be a string"),
        (["x"], "must be a string"),
        ({"x": 1}, "must be a string"),
        (True, "must be a string"),
    ],
)
def test_model_and_prompt(name: str, value: Any, says: str) -> None:
    payload = dict(BASE)
    if value is None:
        del payload[name]
    else:
        payload[name] = value
    exc = rejected(payload)
    assert exc.field == name
    assert says in exc.message


def test_empty_object_names_model_first() -> None:
    exc = rejected({})
    assert exc.field == "model"
    assert exc.message == "model is required"


def test_explicit_null_model_is_required() -> None:
    assert rejected({"model": None, "prompt": "x"}).field == "model"


def test_prompt_too_long() -> None:
    exc = rejected({**BASE, "prompt": "x" * (MAX_PROMPT_CHARS + 1)})
    assert exc.field == "prompt"
    assert "too long" in exc.message


TYPE_ERRORS = [
    ("max_tokens", "10", "an integer"),
    ("max_tokens", 10.0, "an integer"),
    ("max_tokens", 1.5, "an integer"),
    ("max_tokens", True, "an integer"),
    ("max_tokens", [10], "an integer"),
    ("top_k", "5", "an integer"),
    ("top_k", 5.0, "an integer"),
    ("top_k", False, "an integer"),
    ("seed", "42", "an integer"),
    ("seed", 4.2, "an integer"),
    ("seed", True, "an integer"),
    ("temperature", "hot", "a number"),
    ("temperature", True, "a number"),
    ("temperature", [0.5], "a number"),
    ("temperature", {"v": 1}, "a number"),
    ("top_p", "0.5", "a number"),
    ("top_p", False, "a number"),
]


@pytest.mark.parametrize(("name", "value", "kind"), TYPE_ERRORS)
def test_number_type_errors(name: str, value: Any, kind: str) -> None:
    exc = rejected({**BASE, name: value})
    assert exc.field == name
    assert exc.message.startswith(f"{name} must be {kind}")


@pytest.mark.parametrize("name", ["temperature", "top_p"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers(name: str, value: float) -> None:
    exc = rejected({**BASE, name: value})
    assert exc.field == name
    assert "finite" in exc.message


RANGE_ERRORS = [
    ("max_tokens", 0),
    ("max_tokens", -1),
    ("max_tokens", 4097),
    ("max_tokens", 100_000),
    ("temperature", -0.01),
    ("temperature", 2.01),
    ("top_p", -0.5),
    ("top_p", 1.01),
    ("top_k", -1),
    ("top_k", 1_000_001),
    ("seed", -1),
    ("seed", 2**63),
]


@pytest.mark.parametrize(("name", "value"), RANGE_ERRORS)
def test_number_range_errors(name: str, value: float) -> None:
    exc = rejected({**BASE, name: value})
    low, high = LIMITS[name]
    assert exc.field == name
    assert "must be between" in exc.message
    assert exc.details["minimum"] == low
    assert exc.details["maximum"] == high
    assert exc.to_dict()["error"]["field"] == name


@pytest.mark.parametrize("value", [0, 0.0])
def test_top_p_zero_is_rejected(value: float) -> None:
    exc = rejected({**BASE, "top_p": value})
    assert exc.field == "top_p"
    assert "greater than 0" in exc.message


@pytest.mark.parametrize(
    "stop",
    [
        "",
        [""],
        ["a", ""],
        ["a", 1],
        [None],
        5,
        True,
        {"a": "b"},
        ("a",),
        ["s"] * (MAX_STOP_SEQUENCES + 1),
    ],
)
def test_bad_stop(stop: Any) -> None:
    exc = rejected({**BASE, "stop": stop})
    assert exc.field == "stop"


def test_too_many_stops_says_the_limit() -> None:
    exc = rejected({**BASE, "stop": ["s"] * (MAX_STOP_SEQUENCES + 1)})
    assert str(MAX_STOP_SEQUENCES) in exc.message


@pytest.mark.parametrize("raw", ["yes", 1, 0, "true", []])
def test_bad_raw(raw: Any) -> None:
    exc = rejected({**BASE, "raw": raw})
    assert exc.field == "raw"
    assert "true or false" in exc.message


# --- Job -------------------------------------------------------------------------------------


def make_job() -> Job:
    return Job(request=JobRequest(model="tiny", prompt="Hi"))


def test_new_job() -> None:
    job = make_job()
    assert job.id.startswith("job-")
    assert job.state is JobState.QUEUED
    assert not job.state.finished
    assert job.text == ""
    assert job.result == {}
    assert job.worker is None
    assert job.started_at is None
    assert job.finished_at is None
    assert len(job.log) == 0
    assert job.sse_url == f"/jobs/{job.id}/stream"


def test_job_ids_are_unique() -> None:
    assert len({new_job_id() for _ in range(100)}) == 100
    assert make_job().id != make_job().id


def test_mark_running() -> None:
    job = make_job()
    job.mark_running("worker-1")
    assert job.state is JobState.RUNNING
    assert not job.state.finished
    assert job.worker == "worker-1"
    assert job.started_at is not None
    assert job.started_at >= job.created_at


def test_tokens_accumulate_text_and_narration_does_not() -> None:
    job = make_job()
    job.emit(EventType.NARRATION, {"actor": "queen-rbee", "action": "x", "message": "hello"})
    job.mark_running("w")
    events = [job.emit(EventType.TOKEN, {"text": t}) for t in ("Hel", "lo", ", wörld 🐝")]
    assert job.text == "Hello, wörld 🐝"
    assert [e.id for e in events] == [2, 3, 4]
    assert job.state is JobState.RUNNING
    assert not job.log.closed


def test_end_completes_the_job() -> None:
    job = make_job()
    job.mark_running("w")
    job.emit(EventType.TOKEN, {"text": "ok"})
    data = {"outcome": "completed", "finish_reason": "stop", "completion_tokens": 1}
    event = job.emit(EventType.END, data)
    assert event.type is EventType.END
    assert job.state is JobState.COMPLETED
    assert job.state.finished
    assert job.result == data
    assert job.finished_at is not None
    assert job.log.closed
    assert job.text == "ok"


def test_end_without_outcome_means_completed() -> None:
    job = make_job()
    job.emit(EventType.END, {"finish_reason": "length"})
    assert job.state is JobState.COMPLETED
    assert job.result == {"finish_reason": "length"}


@pytest.mark.parametrize("outcome", ["cancelled", "completed"])
def test_end_outcome_sets_the_state(outcome: str) -> None:
    job = make_job()
    job.emit(EventType.END, {"outcome": outcome})
    assert job.state is JobState(outcome)
    assert job.state.finished


@pytest.mark.parametrize("outcome", ["failed", "running", "weird"])
def test_end_with_another_outcome_is_refused_and_leaves_the_log_open(outcome: str) -> None:
    # Failures are error events; an end event that claims one is a bug, caught before the
    # log closes, so the queen can still record an error for the job.
    job = make_job()
    with pytest.raises(ValueError, match="outcome"):
        job.emit(EventType.END, {"outcome": outcome})
    assert not job.log.closed
    job.emit(EventType.ERROR, {"code": "x", "message": "y"})
    assert job.state is JobState.FAILED


def test_error_fails_the_job() -> None:
    job = make_job()
    job.mark_running("w")
    job.emit(EventType.TOKEN, {"text": "partial"})
    job.emit(EventType.ERROR, {"code": "worker_lost", "message": "gone"})
    assert job.state is JobState.FAILED
    assert job.result == {"code": "worker_lost", "message": "gone"}
    assert job.text == "partial"
    assert job.finished_at is not None
    assert job.log.closed


def test_result_is_a_copy_of_the_event_data() -> None:
    job = make_job()
    data = {"outcome": "completed"}
    job.emit(EventType.END, data)
    data["outcome"] = "changed"
    assert job.result == {"outcome": "completed"}


@pytest.mark.parametrize("terminal", [EventType.END, EventType.ERROR])
def test_nothing_after_a_terminal_event(terminal: EventType) -> None:
    job = make_job()
    job.emit(terminal, {"code": "x", "message": "y"} if terminal is EventType.ERROR else {})
    state, text, finished_at = job.state, job.text, job.finished_at
    with pytest.raises(RuntimeError, match="closed"):
        job.emit(EventType.TOKEN, {"text": "late"})
    with pytest.raises(RuntimeError):
        job.emit(EventType.ERROR, {"code": "x", "message": "y"})
    assert (job.state, job.text, job.finished_at) == (state, text, finished_at)
    assert len(job.log) == 1


def test_summary() -> None:
    job = make_job()
    assert job.summary()["result"] is None
    job.mark_running("worker-9")
    job.emit(EventType.TOKEN, {"text": "a"})
    job.emit(EventType.END, {"outcome": "completed", "finish_reason": "stop"})
    summary = job.summary()
    assert summary == {
        "job_id": job.id,
        "state": "completed",
        "model": "tiny",
        "worker": "worker-9",
        "created_at": job.created_at,
        "started_at": job.started_at,
        "first_token_at": job.first_token_at,
        "finished_at": job.finished_at,
        "events": 2,
        "tokens": 1,
        "text": "a",
        "result": {"outcome": "completed", "finish_reason": "stop"},
        "request": job.request.to_json(),
        "runs": [],
    }


def test_job_state_finished() -> None:
    assert {s for s in JobState if s.finished} == {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
    }


def test_messages_are_validated_and_round_trip() -> None:
    req = request(messages=[{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "Hello"}])  # fmt: skip
    assert req.turns == (("system", "Be brief."), ("user", "Hello"))
    assert JobRequest.from_json(req.to_json()) == req


@pytest.mark.parametrize(
    "messages",
    [[], "hi", [{"role": "robot", "content": "x"}], [{"role": "user", "content": 3}], [1]],
)
def test_bad_messages_name_the_field(messages: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        request(messages=messages)
    assert info.value.field == "messages"


def test_first_token_time_and_token_count() -> None:
    job = make_job()
    assert job.first_token_at is None
    job.emit(EventType.TOKEN, {"text": "a"})
    first = job.first_token_at
    job.emit(EventType.TOKEN, {"text": "b"})
    assert first is not None and job.first_token_at == first
    assert job.tokens == 2


def _declared(spec: dict[str, Any]) -> dict[str, Any]:
    """A field's schema without its ``null`` branch (an optional field's)."""
    branches = [b for b in spec.get("anyOf", [spec]) if b.get("type") != "null"]
    return branches[0] if len(branches) == 1 else spec


def test_the_body_schema_declares_exactly_the_requests_fields_and_limits() -> None:
    schema = JobRequest.json_schema()
    properties = schema["properties"]
    assert list(properties) == list(JobRequest.__struct_fields__)
    assert schema["required"] == ["model"] and schema["additionalProperties"] is False
    assert {"required": ["embed"]} in schema["anyOf"]  # else a prompt
    for name, (low, high) in LIMITS.items():
        spec = _declared(properties[name])
        assert (spec.get("minimum", spec.get("exclusiveMinimum")), spec["maximum"]) == (low, high)
    assert _declared(properties["top_p"])["exclusiveMinimum"] == 0
    assert "$defs" not in schema and "$ref" not in str(schema)  # self-contained
    assert all(spec.get("description") for spec in properties.values())


def test_the_schema_describes_what_a_request_accepts() -> None:
    """Each field's declaration is what decoding holds a body to: a body the schema allows
    is accepted, and the schema's bounds are where refusals start."""
    properties = JobRequest.json_schema()["properties"]
    for name, (low, high) in LIMITS.items():
        spec = _declared(properties[name])
        if "minimum" in spec:
            assert getattr(request(**{name: low}), name) == low
        assert getattr(request(**{name: high}), name) == high
        assert rejected({**BASE, name: high * 2 + 1}).field == name


@pytest.mark.parametrize("name", JobRequest.__struct_fields__)
def test_every_field_refused_names_itself(name: str) -> None:
    exc = rejected({**BASE, name: [[]]})  # no field takes a list of lists
    assert exc.field == name
    assert exc.message.startswith(name), exc.message


def test_the_two_parts_generation_and_placement() -> None:
    from rbee_core.job_request import PLACEMENT, Generation

    assert PLACEMENT == ("hive", "device", "backend", "keep_alive", "timeout", "split")
    assert set(Generation.__struct_fields__) == set(JobRequest.__struct_fields__) - set(PLACEMENT)
    req = request(hive="alpha", device="cpu", backend="torch", keep_alive=-1, timeout=9,
                  stop="END", seed=3)  # fmt: skip
    generation = req.generation
    assert type(generation) is Generation
    assert {n: getattr(generation, n) for n in generation.__struct_fields__} == {
        n: getattr(req, n) for n in Generation.__struct_fields__
    }
    # What the queen forwards to a worker decodes there as the same generation.
    assert Generation.from_json(generation.to_json()) == generation
    with pytest.raises(InvalidRequest, match="unknown field 'hive'") as err:
        Generation.from_json({**BASE, "hive": "alpha"})  # a worker takes no placement
    assert err.value.field == "hive"


def test_every_field_round_trips() -> None:
    from rbee_core.job_request import Message

    body = {
        **BASE,
        "max_tokens": 9, "temperature": 0.5, "top_p": 0.9, "top_k": 4, "seed": 5,
        "stop": ["x"], "raw": True, "messages": [{"role": "user", "content": "Hello"}],
        "response_format": {"type": "json_object"},
        "tools": [{"name": "f", "parameters": {"type": "object"}}],
        "embed": ["a"], "hive": "alpha", "device": "cpu", "backend": "torch",
        "keep_alive": -1.0, "timeout": 30.0, "split": ["alpha", "beta"],
    }  # fmt: skip
    req = JobRequest.from_json(body)
    assert set(body) == set(JobRequest.__struct_fields__)
    assert req.to_json() == body
    assert JobRequest.from_json(req.to_json()) == req
    assert req.messages == (Message("user", "Hello"),) and req.turns == (("user", "Hello"),)


@pytest.mark.parametrize(
    "name", ["max_tokens", "temperature", "top_p", "top_k", "seed", "timeout", "keep_alive"]
)
def test_a_number_too_large_for_a_float_is_refused_naming_its_field(name: str) -> None:
    exc = rejected({**BASE, name: 10**400})  # JSON allows it; no float holds it
    assert exc.field == name


def test_keep_alive_is_seconds_or_minus_one() -> None:
    assert request(keep_alive=-1).keep_alive == -1.0
    assert request(keep_alive=0.5).keep_alive == 0.5
    for bad in (0, -2, -1.5, "long", True):
        exc = rejected({**BASE, "keep_alive": bad})
        assert exc.field == "keep_alive" and "or -1 to keep the worker loaded" in exc.message


# -- caps on what a client sends ------------------------------------------------------------


def test_too_many_messages_are_refused_naming_the_cap() -> None:
    from rbee_core.job_request import MAX_MESSAGES

    messages = [{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1)
    with pytest.raises(InvalidRequest, match=f"at most {MAX_MESSAGES}") as err:
        JobRequest.from_json({"model": "m", "prompt": "hi", "messages": messages})
    assert err.value.field == "messages"
    ok = JobRequest.from_json({"model": "m", "prompt": "hi", "messages": messages[1:]})
    assert len(ok.messages) == MAX_MESSAGES


def test_messages_too_long_together_are_refused_naming_the_cap() -> None:
    from rbee_core.job_request import MAX_CONVERSATION_CHARS

    half = "x" * (MAX_CONVERSATION_CHARS // 2)
    fits = [{"role": "user", "content": half}, {"role": "assistant", "content": half}]
    JobRequest.from_json({"model": "m", "prompt": "hi", "messages": fits})
    over = [*fits, {"role": "user", "content": "y"}]
    with pytest.raises(InvalidRequest, match=f"{MAX_CONVERSATION_CHARS} characters") as err:
        JobRequest.from_json({"model": "m", "prompt": "hi", "messages": over})
    assert err.value.field == "messages"


def test_a_long_stop_string_is_refused_naming_the_cap() -> None:
    from rbee_core.job_request import MAX_STOP_CHARS

    JobRequest.from_json({"model": "m", "prompt": "hi", "stop": ["s" * MAX_STOP_CHARS]})
    with pytest.raises(InvalidRequest, match=r"stop\[1\] is 257 characters, at most 256") as e:
        JobRequest.from_json({"model": "m", "prompt": "hi", "stop": ["a", "s" * 257]})
    assert e.value.field == "stop"
    with pytest.raises(InvalidRequest, match=r"^stop is 257 characters"):
        JobRequest.from_json({"model": "m", "prompt": "hi", "stop": "s" * 257})


@pytest.mark.parametrize(("name", "cap"), [("model", 4096), ("hive", 256), ("device", 256)])
def test_long_names_are_refused_naming_the_cap(name: str, cap: int) -> None:
    body = {"model": "m", "prompt": "hi", name: "n" * (cap + 1)}
    message = f"{name} is too long: {cap + 1} characters, at most {cap}"
    with pytest.raises(InvalidRequest, match=message):
        JobRequest.from_json(body)


def test_the_body_schema_declares_the_caps() -> None:
    from rbee_core.job_request import (
        MAX_CONVERSATION_CHARS,
        MAX_MESSAGES,
        MAX_MODEL_CHARS,
        MAX_NAME_CHARS,
        MAX_STOP_CHARS,
    )

    properties = JobRequest.json_schema()["properties"]
    assert properties["messages"]["maxItems"] == MAX_MESSAGES
    assert properties["messages"]["items"]["properties"]["content"]["maxLength"] == (
        MAX_CONVERSATION_CHARS
    )
    one, many = properties["stop"]["anyOf"]
    assert one["maxLength"] == many["items"]["maxLength"] == MAX_STOP_CHARS
    assert properties["model"]["maxLength"] == MAX_MODEL_CHARS
    for name in ("hive", "device", "backend"):
        assert _declared(properties[name])["maxLength"] == MAX_NAME_CHARS


def test_the_api_docs_name_every_field_of_the_job_contract() -> None:
    from pathlib import Path

    from rbee_core.job_request import JobRequest

    api = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = api.split("### `POST /jobs`", 1)[1].split("\n### ", 1)[0]
    missing = [f for f in JobRequest.__struct_fields__ if f"`{f}`" not in section]
    assert missing == []
