"""Steps that use the official openai client, unchanged, against the queen."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
from behave import given, then, when

from steps.support import processes
from steps.support.jobs import DEFAULT_MODEL, assert_listed

QUESTION = [{"role": "user", "content": "Name the capital of France."}]


@given("an OpenAI client pointed at the queen")
def step_client(context: Any) -> None:
    context.openai = openai.OpenAI(
        base_url=f"{context.queen_url}/v1", api_key="not-needed", max_retries=0, timeout=300
    )


def _jobs(context: Any) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = httpx.get(f"{context.queen_url}/jobs").json()["jobs"]
    return jobs


def _job_behind(context: Any) -> dict[str, Any]:
    """The record of the job behind the last OpenAI request (the newest job: GET /jobs
    lists newest first)."""
    return _jobs(context)[0]


@when("I list the models with the OpenAI client")
def step_list(context: Any) -> None:
    context.models = [m.id for m in context.openai.models.list()]


@then('the model list includes "{name}"')
def step_list_includes(context: Any, name: str) -> None:
    assert name in context.models, context.models


@when('I ask the OpenAI client for a chat completion of "{prompt}"')
def step_chat(context: Any, prompt: str) -> None:
    context.completion = context.openai.chat.completions.create(
        model=DEFAULT_MODEL, messages=[{"role": "user", "content": prompt}], temperature=0
    )


@when(
    'I ask the OpenAI client for a chat completion with a system message "{system}" and "{prompt}"'
)
def step_chat_system(context: Any, system: str, prompt: str) -> None:
    context.sent = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    context.completion = context.openai.chat.completions.create(
        model=DEFAULT_MODEL, messages=context.sent, temperature=0, max_tokens=20
    )


@then("the job behind it was sent both messages")
def step_both_messages(context: Any) -> None:
    record = _job_behind(context)
    assert record["request"]["messages"] == context.sent, record["request"]
    assert record["state"] == "completed", record
    assert context.completion.choices[0].message.content == record["text"]


@then('the completion\'s message is "{text}"')
def step_message(context: Any, text: str) -> None:
    assert context.completion.choices[0].message.content == text, context.completion


@then('the completion\'s finish_reason is "{reason}"')
def step_finish(context: Any, reason: str) -> None:
    assert context.completion.choices[0].finish_reason == reason, context.completion


@then("the completion's usage adds up")
def step_usage(context: Any) -> None:
    usage = context.completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0, usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage


@then('the job behind it shows in rbee-keeper jobs list as "{state}"')
def step_jobs_list(context: Any, state: str) -> None:
    record = _job_behind(context)
    assert context.completion.id == "chatcmpl-" + record["job_id"].removeprefix("job-")
    assert_listed(context, record["job_id"], state)


@when('I stream a chat completion of "{prompt}" with usage')
def step_stream(context: Any, prompt: str) -> None:
    stream = context.openai.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": prompt}],
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    context.chunks = list(stream)


@then('every streamed chunk is a "{kind}" with the same id')
def step_chunk_kind(context: Any, kind: str) -> None:
    assert {c.object for c in context.chunks} == {kind}
    assert len({c.id for c in context.chunks}) == 1


@then('the streamed content is "{text}"')
def step_streamed_text(context: Any, text: str) -> None:
    content = "".join(c.choices[0].delta.content or "" for c in context.chunks if c.choices)
    assert content == text, repr(content)
    assert sum(1 for c in context.chunks if c.choices and c.choices[0].delta.content) > 1


@then('the last choice chunk has finish_reason "{reason}"')
def step_last_choice(context: Any, reason: str) -> None:
    last = [c for c in context.chunks if c.choices][-1]
    assert last.choices[0].finish_reason == reason, last


@then("the stream ends with a usage chunk that adds up")
def step_usage_chunk(context: Any) -> None:
    last = context.chunks[-1]
    assert last.choices == [] and last.usage is not None, last
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


@when('I ask the OpenAI client for a completion of "{prompt}" with at most {n:d} tokens')
def step_completion(context: Any, prompt: str, n: int) -> None:
    context.completion = context.openai.completions.create(
        model=DEFAULT_MODEL, prompt=prompt, max_tokens=n, temperature=0
    )


@then('the completion\'s text contains "{text}"')
def step_completion_text(context: Any, text: str) -> None:
    assert text in context.completion.choices[0].text, context.completion


def _attempt(context: Any, **kwargs: Any) -> None:
    context.error = None
    try:
        context.openai.chat.completions.create(**{"model": DEFAULT_MODEL,
                                                  "messages": QUESTION, **kwargs})  # fmt: skip
    except openai.APIStatusError as exc:
        context.error = exc


@when('I ask the OpenAI client for a chat completion with model "{model}"')
def step_chat_model(context: Any, model: str) -> None:
    _attempt(context, model=model)


@when("I ask the OpenAI client for a chat completion with {param} set to {value}")
def step_chat_param(context: Any, param: str, value: str) -> None:
    _attempt(context, **{param: json.loads(value)})


@then("the OpenAI client raises {name} with status {status:d}")
def step_raises(context: Any, name: str, status: int) -> None:
    assert context.error is not None, "the request succeeded"
    assert type(context.error).__name__ == name, repr(context.error)
    assert context.error.status_code == status


@then('the OpenAI error has type "{type_}", param "{param}" and code "{code}"')
def step_error_shape(context: Any, type_: str, param: str, code: str) -> None:
    body = context.error.body
    assert (body["type"], body["param"], body["code"]) == (type_, param, code), body
    assert set(body) == {"message", "type", "param", "code"}, body


@then('the OpenAI error has type "{type_}" and param "{param}"')
def step_error_param(context: Any, type_: str, param: str) -> None:
    body = context.error.body
    assert (body["type"], body["param"]) == (type_, param), body


@then('the OpenAI error\'s message mentions "{text}"')
def step_error_message(context: Any, text: str) -> None:
    assert text in context.error.body["message"], context.error.body


@then('the OpenAI-shaped error mentions "{text}"')
def step_raw_openai_error(context: Any, text: str) -> None:
    error = context.response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert text in error["message"], error


@when('I stream a chat completion of "{prompt}" and leave after {n:d} chunks')
def step_stream_leave(context: Any, prompt: str, n: int) -> None:
    stream = context.openai.chat.completions.create(
        model=DEFAULT_MODEL, messages=[{"role": "user", "content": prompt}],
        temperature=0, max_tokens=1000, stream=True,
    )  # fmt: skip
    for i, _ in enumerate(stream, start=1):
        if i >= n:
            break
    stream.close()  # the client goes away mid-stream


@then('the job behind it becomes "{state}"')
def step_becomes(context: Any, state: str) -> None:
    processes.wait_until(lambda: _job_behind(context)["state"] == state, 30, f"job {state}")


@then("the job behind it generated fewer than {n:d} tokens")
def step_fewer(context: Any, n: int) -> None:
    record = _job_behind(context)
    assert record["tokens"] < n, record
