"""Steps that use the official ``ollama`` Python client, unchanged, against the queen."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import ollama
from behave import given, then, when
from pydantic import BaseModel, Field

from steps.support.jobs import DEFAULT_MODEL, auth

# The default model as an Ollama user names it.
OLLAMA_MODEL = "smollm2:135m"


class City(BaseModel):
    name: str = Field(max_length=40)
    country: str = Field(max_length=40)


def _ask(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def _jobs(context: Any) -> list[dict[str, Any]]:
    answer = httpx.get(f"{context.queen_url}/jobs", headers=auth(context), timeout=30)
    jobs: list[dict[str, Any]] = answer.json()["jobs"]
    return jobs


def _newest_job(context: Any) -> dict[str, Any]:
    return _jobs(context)[0]  # GET /jobs lists newest first


@given("an Ollama client pointed at the queen")
def step_client(context: Any) -> None:
    context.ollama = ollama.Client(host=context.queen_url, headers=auth(context), timeout=300)


@when('I chat with the Ollama client about "{prompt}"')
def step_chat(context: Any, prompt: str) -> None:
    context.ollama_answer = context.ollama.chat(
        model=OLLAMA_MODEL, messages=_ask(prompt), options={"temperature": 0}, stream=False
    )


@then('the Ollama chat answer is the text of the job behind it, done with "{reason}"')
def step_chat_answer(context: Any, reason: str) -> None:
    answer = context.ollama_answer
    job = _newest_job(context)
    assert job["state"] == "completed", job
    assert answer.message.role == "assistant", answer
    assert answer.message.content and answer.message.content == job["text"], (answer, job)
    assert answer.done and answer.done_reason == reason, answer
    assert answer.model == OLLAMA_MODEL, answer
    assert answer.eval_count == job["result"]["completion_tokens"], (answer, job)
    assert answer.prompt_eval_count == job["result"]["prompt_tokens"], (answer, job)


@when('I stream an Ollama chat about "{prompt}"')
def step_stream(context: Any, prompt: str) -> None:
    context.ollama_parts = list(
        context.ollama.chat(
            model=OLLAMA_MODEL, messages=_ask(prompt), options={"temperature": 0}, stream=True
        )
    )


@then("the Ollama stream's parts join into the job's text and only its last part is done")
def step_stream_parts(context: Any) -> None:
    parts = context.ollama_parts
    job = _newest_job(context)
    assert len(parts) > 2, parts
    assert all(not p.done for p in parts[:-1]) and parts[-1].done, parts
    assert "".join(p.message.content or "" for p in parts) == job["text"], (parts, job)
    assert parts[-1].done_reason == "stop", parts[-1]


@then("the Ollama stream's last part counts the job's tokens, with durations in nanoseconds")
def step_stream_counts(context: Any) -> None:
    last = context.ollama_parts[-1]
    job = _newest_job(context)
    assert last.eval_count == job["result"]["completion_tokens"], (last, job)
    assert last.prompt_eval_count == job["result"]["prompt_tokens"] > 0, (last, job)
    wall = (job["finished_at"] - job["created_at"]) * 1e9
    assert last.total_duration and abs(last.total_duration - wall) < 1e6, (last, job)
    assert last.eval_duration and 0 < last.eval_duration <= last.total_duration, last


@when("I stream an Ollama chat by hand")
def step_stream_by_hand(context: Any) -> None:
    body = {
        "model": OLLAMA_MODEL,
        "messages": _ask("Write a long story about bees."),
        "options": {"temperature": 0, "num_predict": 8},
    }
    url = f"{context.queen_url}/api/chat"
    with httpx.stream("POST", url, json=body, headers=auth(context), timeout=300) as answer:
        context.ollama_raw = answer
        context.ollama_raw_lines = [x for x in answer.iter_lines() if x]


@then("the Ollama answer is NDJSON, one object a line, the last one done")
def step_ndjson(context: Any) -> None:
    answer = context.ollama_raw
    assert answer.status_code == 200, answer
    assert answer.headers["content-type"].startswith("application/x-ndjson"), answer.headers
    objects = [json.loads(x) for x in context.ollama_raw_lines]
    assert [o["done"] for o in objects] == [False] * (len(objects) - 1) + [True], objects
    assert objects[-1]["done_reason"] == "length" and objects[-1]["eval_count"] == 8, objects


@when('I ask the Ollama client to generate from "{prompt}" with at most {tokens:d} tokens')
def step_generate(context: Any, prompt: str, tokens: int) -> None:
    context.ollama_answer = context.ollama.generate(
        model=OLLAMA_MODEL, prompt=prompt, options={"temperature": 0, "num_predict": tokens}
    )


@then('the Ollama generation answers the job\'s text, done with "{reason}"')
def step_generated(context: Any, reason: str) -> None:
    answer = context.ollama_answer
    job = _newest_job(context)
    assert answer.response and answer.response == job["text"], (answer, job)
    assert answer.done and answer.done_reason == reason, answer
    assert job["request"]["messages"] == [{"role": "user", "content": "The capital of France is"}]


@then('GET /jobs lists the {n:d} Ollama requests as completed jobs of "{model}"')
def step_jobs_listed(context: Any, n: int, model: str) -> None:
    jobs = _jobs(context)
    assert len(jobs) == n, jobs
    assert all(j["state"] == "completed" and j["model"] == model for j in jobs), jobs


@when('I ask the Ollama client for a City as format about "{prompt}"')
def step_format_city(context: Any, prompt: str) -> None:
    context.ollama_answer = context.ollama.chat(
        model=OLLAMA_MODEL,
        messages=_ask(prompt),
        format=City.model_json_schema(),
        options={"temperature": 0, "num_predict": 100},
        stream=False,
    )


@then("the Ollama answer validates as a City")
def step_is_city(context: Any) -> None:
    answer = context.ollama_answer
    assert answer.done_reason == "stop", answer
    city = City.model_validate_json(answer.message.content or "")
    assert city.name and city.country, city
    assert _newest_job(context)["request"]["response_format"]["type"] == "json_schema"


@when('I ask the Ollama client for format "json" about "{prompt}"')
def step_format_json(context: Any, prompt: str) -> None:
    context.ollama_answer = context.ollama.generate(
        model=OLLAMA_MODEL,
        prompt=prompt,
        format="json",
        options={"temperature": 0, "num_predict": 100},
    )


@then("the Ollama answer is a JSON object")
def step_json_object(context: Any) -> None:
    answer = context.ollama_answer
    assert answer.done_reason == "stop", answer
    assert isinstance(json.loads(answer.response or ""), dict), answer


@when("I embed these sentences with the Ollama client:")
def step_embed(context: Any) -> None:
    context.sentences = [row["sentence"] for row in context.table]
    context.ollama_vectors = context.ollama.embed(
        model=OLLAMA_MODEL, input=context.sentences
    ).embeddings


@then("the Ollama client got {n:d} unit vectors of {width:d} dimensions")
def step_unit_vectors(context: Any, n: int, width: int) -> None:
    vectors = context.ollama_vectors
    assert len(vectors) == n and all(len(v) == width for v in vectors), [len(v) for v in vectors]
    for v in vectors:
        assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3
    job = _newest_job(context)
    assert job["state"] == "completed" and job["request"]["embed"] == context.sentences, job


def _cosine(a: Any, b: Any) -> float:
    return float(sum(x * y for x, y in zip(a, b, strict=True)))


@then("the first two Ollama vectors are closer to each other than either is to the third")
def step_closer(context: Any) -> None:
    a, b, c = context.ollama_vectors
    assert _cosine(a, b) > max(_cosine(a, c), _cosine(b, c)), (_cosine(a, b), _cosine(a, c))


@when('I embed "{text}" with the Ollama client\'s older embeddings call')
def step_embeddings(context: Any, text: str) -> None:
    context.ollama_vector = context.ollama.embeddings(model=OLLAMA_MODEL, prompt=text).embedding


@then("the Ollama embedding is the first of the three")
def step_same_vector(context: Any) -> None:
    assert _cosine(context.ollama_vector, context.ollama_vectors[0]) > 0.9999


@when("I list the models with the Ollama client")
def step_list(context: Any) -> None:
    context.ollama_models = context.ollama.list().models


def _names(context: Any) -> list[str]:
    return [m.model for m in context.ollama.list().models]


@then('the Ollama model list includes "{name}"')
def step_list_includes(context: Any, name: str) -> None:
    names = [m.model for m in context.ollama_models]
    assert name in names, names
    entry = next(m for m in context.ollama_models if m.model == name)
    assert entry.details is not None and entry.modified_at is not None, entry
    # A listed name is one the client can send back.
    answer = context.ollama.generate(model=name, prompt="Hi", options={"num_predict": 1})
    assert answer.done, answer


@when('I ask the Ollama client to show "{name}"')
def step_show(context: Any, name: str) -> None:
    context.ollama_shown = context.ollama.show(name)


@then('the Ollama model shows it can do "{one}" and "{two}"')
def step_shown(context: Any, one: str, two: str) -> None:
    shown = context.ollama_shown
    assert one in (shown.capabilities or []) and two in (shown.capabilities or []), shown
    assert shown.modelinfo and shown.modelinfo["rbee.name"] == DEFAULT_MODEL, shown
    assert shown.details is not None and shown.details.format == "gguf", shown


@then('the Ollama client\'s ps lists "{name}" as loaded')
def step_ps(context: Any, name: str) -> None:
    deadline = time.monotonic() + 15  # the hive reports its workers with its heartbeat
    while True:
        loaded = context.ollama.ps().models
        if any(m.model == name for m in loaded) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    entry = next((m for m in loaded if m.model == name), None)
    assert entry is not None, loaded
    assert entry.size and entry.size > 0 and entry.expires_at is not None, entry


@when("I pull the served model with the Ollama client, streamed")
def step_pull(context: Any) -> None:
    context.ollama_progress = list(context.ollama.pull(context.model_url, stream=True))


@then("the Ollama pull's progress grows to the file's size and ends with \"{status}\"")
def step_pull_progress(context: Any, status: str) -> None:
    lines = context.ollama_progress
    size = context.model_server.path.stat().st_size
    bars = [p for p in lines if p.total]
    assert len(bars) >= 2, lines
    done = [p.completed or 0 for p in bars]
    assert done == sorted(done) and done[-1] == size, done
    assert all(p.total == size and p.digest for p in bars), bars
    assert lines[-1].status == status, lines[-1]


@then("the Ollama model list includes the served model")
def step_has_served(context: Any) -> None:
    names = _names(context)
    assert context.model_url in names, names


@when("I delete the served model with the Ollama client")
def step_delete(context: Any) -> None:
    context.ollama_deleted = context.ollama.delete(context.model_url)
    assert context.ollama_deleted.status == "success", context.ollama_deleted


@then("the Ollama model list does not include the served model")
def step_lacks_served(context: Any) -> None:
    names = _names(context)
    assert context.model_url not in names, names


@when('I chat with the Ollama client using the model "{model}"')
def step_chat_model(context: Any, model: str) -> None:
    try:
        context.ollama.chat(model=model, messages=_ask("Hi"), stream=False)
    except ollama.ResponseError as exc:
        context.ollama_error = exc
    else:
        raise AssertionError(f"{model} was answered")


@when('I chat with the Ollama client with the option "{name}" set to {value:g}')
def step_chat_option(context: Any, name: str, value: float) -> None:
    try:
        context.ollama.chat(
            model=OLLAMA_MODEL, messages=_ask("Hi"), options={name: value}, stream=False
        )
    except ollama.ResponseError as exc:
        context.ollama_error = exc
    else:
        raise AssertionError(f"the option {name} was accepted")


@then('the Ollama client raises ResponseError with status {status:d} naming "{one}" and "{two}"')
def step_error_two(context: Any, status: int, one: str, two: str) -> None:
    error = context.ollama_error
    assert error.status_code == status, error
    assert one in error.error and two in error.error, error.error


@then('the Ollama client raises ResponseError with status {status:d} naming "{name}"')
def step_error(context: Any, status: int, name: str) -> None:
    error = context.ollama_error
    assert error.status_code == status, error
    assert name in error.error, error.error
