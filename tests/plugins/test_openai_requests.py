"""OpenAI request bodies to rbee jobs: what is honoured, and what is refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from rbee_core.jobs import Job
from rbee_openai.errors import OpenAIError
from rbee_openai.requests import parse_chat, parse_completion
from rbee_openai.responses import Shape, finish_reason, usage

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def chat(**extra: Any) -> Any:
    return parse_chat(CHAT | extra)


def test_chat_maps_sampling_and_conversation() -> None:
    req = parse_chat(
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
                },
            ],
            "temperature": 0,
            "top_p": 0.5,
            "seed": 3,
            "stop": "x",
            "max_completion_tokens": 7,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "someone",
        }
    )
    assert req.stream and req.include_usage
    job = req.job
    assert job.turns == (("system", "Be brief."), ("user", "Hello"))
    assert job.prompt == "Hello"  # for backends without a chat template
    assert (job.temperature, job.top_p, job.seed, job.stop, job.max_tokens) == (
        0.0, 0.5, 3, ("x",), 7,
    )  # fmt: skip
    assert not job.raw


def test_chat_defaults() -> None:
    req = chat()
    assert (req.stream, req.include_usage, req.job.max_tokens) == (False, False, 512)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"tools": [{"type": "retrieval"}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {
                "parallel_tool_calls": "yes",
                "tools": [{"type": "function", "function": {"name": "f"}}],
            },
            "parallel_tool_calls",
        ),
        ({"temperature": 9}, "temperature"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stream": "yes"}, "stream"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages"),
        ({"model": ""}, "model"),
    ],
)
def test_chat_refuses_by_name(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(OpenAIError) as info:
        chat(**extra)
    assert info.value.param == param
    assert info.value.status == 400


def test_zero_penalties_are_accepted() -> None:
    assert chat(presence_penalty=0, frequency_penalty=0, n=1).job.model == "m"


def test_completion_is_raw_with_openai_default_length() -> None:
    req = parse_completion({"model": "m", "prompt": ["Once"]})
    assert req.job.raw and req.job.prompt == "Once" and req.job.max_tokens == 16


@pytest.mark.parametrize("body", [{"model": "m"}, {"model": "m", "prompt": ["a", "b"]},
                                  {"model": "m", "prompt": "a", "suffix": "z"}])  # fmt: skip
def test_completion_refusals(body: dict[str, Any]) -> None:
    with pytest.raises(OpenAIError):
        parse_completion(body)


def test_response_shapes() -> None:
    job = Job(request=chat().job)
    job.text = "Paris."
    job.result = {"finish_reason": "length", "prompt_tokens": 3, "completion_tokens": 2}
    shape = Shape("chat", job)
    assert shape.id == "chatcmpl-" + job.id.removeprefix("job-")
    full = shape.complete()
    assert full["object"] == "chat.completion"
    assert full["choices"][0]["message"] == {"role": "assistant", "content": "Paris."}
    assert full["choices"][0]["finish_reason"] == "length"
    assert full["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 0},  # a worker that did not say
    }
    first = shape.chunk(role=True)
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert shape.usage_chunk(job.result)["choices"] == []
    text = Shape("text", job)
    assert text.chunk("a")["object"] == "text_completion"
    assert text.chunk("a")["choices"][0]["text"] == "a"
    assert finish_reason({"finish_reason": "cancelled"}) == "stop"
    assert usage({})["total_tokens"] == 0
    cached = {"prompt_tokens": 900, "completion_tokens": 4, "cached_tokens": 850}
    assert usage(cached)["prompt_tokens_details"] == {"cached_tokens": 850}
    assert shape.usage_chunk(cached)["usage"]["prompt_tokens_details"]["cached_tokens"] == 850


def test_response_format_reaches_the_job_and_a_bad_one_names_the_parameter() -> None:
    shape = {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}
    req = chat(response_format=shape)
    assert req.job.response_format is not None
    assert req.job.response_format.to_json() == shape
    assert chat(response_format={"type": "text"}).job.response_format is None
    with pytest.raises(OpenAIError) as caught:
        chat(response_format={"type": "yaml"})
    assert caught.value.param == "response_format"
    assert "type must be one of" in str(caught.value)


def test_chat_refuses_too_many_messages_before_reading_them() -> None:
    from rbee_core.job_request import MAX_MESSAGES

    body = {"model": "m", "messages": [None] * (MAX_MESSAGES + 1)}  # none would pass either
    with pytest.raises(OpenAIError, match=f"at most {MAX_MESSAGES}") as err:
        parse_chat(body)
    assert err.value.param == "messages"


def test_chat_refuses_a_long_stop_string_naming_stop() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": ["s" * 300]}
    with pytest.raises(OpenAIError, match="at most 256") as err:
        parse_chat(body)
    assert err.value.param == "stop"
