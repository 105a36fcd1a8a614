"""Steps for structured outputs: jobs held to a JSON Schema, through the job API and the
official openai client."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from behave import given, then, when
from pydantic import BaseModel

from steps.support.jobs import DEFAULT_MODEL, auth, post_job, submit
from steps.support.sse import Stream, read_stream

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer"},
        "city": {"type": "string", "enum": ["Paris", "Berlin", "Rome"]},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}
PERSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
PERSON_PROMPT = "Describe a person who lives in the capital of France."


class City(BaseModel):
    name: str
    population: int


class Capital(BaseModel):
    """The official client's own structured-outputs example."""

    country: str
    city: str
    population_millions: float


def _read(context: Any, job: dict[str, Any]) -> Stream:
    return read_stream(f"{context.queen_url}{job['sse_url']}", headers=auth(context))


def _record(context: Any, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{context.queen_url}/jobs/{job_id}", headers=auth(context), timeout=10)
    record: dict[str, Any] = answer.json()
    return record


def _job_ids(context: Any) -> set[str]:
    answer = httpx.get(f"{context.queen_url}/jobs", headers=auth(context), timeout=10).json()
    return {r["job_id"] for r in answer["jobs"]}


@when('I ask the OpenAI client to parse a City from "{prompt}"')
def step_parse(context: Any, prompt: str) -> None:
    before = _job_ids(context)
    context.parsed = context.openai.chat.completions.parse(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": prompt}],
        response_format=City,
        temperature=0,
    )
    (context.job_id,) = _job_ids(context) - before


@then("the parsed City has a name and a population as an integer")
def step_parsed_city(context: Any) -> None:
    message = context.parsed.choices[0].message
    assert isinstance(message.parsed, City), context.parsed
    assert message.parsed.name and isinstance(message.parsed.population, int), message
    assert context.parsed.choices[0].finish_reason == "stop", context.parsed


@when('I ask the OpenAI client to parse a Capital from "{prompt}" in {tokens:d} tokens')
def step_parse_capital(context: Any, prompt: str, tokens: int) -> None:
    context.parsed = context.openai.chat.completions.parse(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": prompt}],
        response_format=Capital,
        temperature=0,
        max_tokens=tokens,
    )


@then("the parsed Capital has a country, a city and a population in millions")
def step_parsed_capital(context: Any) -> None:
    choice = context.parsed.choices[0]
    assert isinstance(choice.message.parsed, Capital), context.parsed
    assert choice.message.parsed.country and choice.message.parsed.city, choice.message
    assert choice.finish_reason == "stop", context.parsed


@when(
    "I post a strict chat completion held to the Capital schema, which does not close its "
    "object, in {tokens:d} tokens"
)
def step_strict_capital(context: Any, tokens: int) -> None:
    schema = Capital.model_json_schema()
    assert "additionalProperties" not in schema  # pydantic's own schema leaves others open
    body = {
        "model": DEFAULT_MODEL,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "temperature": 0,
        "max_tokens": tokens,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Capital", "schema": schema, "strict": True},
        },
    }
    context.response = httpx.post(
        f"{context.queen_url}/v1/chat/completions", json=body, headers=auth(context), timeout=300
    )


@then('the answer is a Capital with no property the schema leaves out, finished with "{reason}"')
def step_strict_capital_answer(context: Any, reason: str) -> None:
    assert context.response.status_code == 200, context.response.text
    choice = context.response.json()["choices"][0]
    answer = json.loads(choice["message"]["content"])
    assert set(answer) <= set(Capital.model_fields), answer
    Capital.model_validate(answer)
    assert choice["finish_reason"] == reason, choice


@then('the job behind it narrated "{text}"')
def step_behind_narrated(context: Any, text: str) -> None:
    stream = read_stream(f"{context.queen_url}/jobs/{context.job_id}/stream", auth(context))
    said = [n["message"] for n in stream.narration]
    assert any(text in m for m in said), said


@when("I submit a job held to the person schema at temperature {temperature:g}")
def step_person_job(context: Any, temperature: float) -> None:
    job = submit(
        context,
        prompt=PERSON_PROMPT,
        temperature=temperature,
        seed=11,
        response_format=PERSON_FORMAT,
    )
    context.person = _read(context, job)
    context.person_job = job


@then("the job's answer is a JSON person with a name, an age and a city")
def step_is_person(context: Any) -> None:
    stream: Stream = context.person
    end = stream.of_type("end")
    assert end and end[0]["data"]["finish_reason"] == "stop", stream.events[-3:]
    person = json.loads(stream.text)
    assert set(person) == {"name", "age", "city"}, person
    assert isinstance(person["name"], str) and len(person["name"]) <= 40, person
    assert isinstance(person["age"], int) and person["city"] in ("Paris", "Berlin", "Rome")


@when('I submit a job held to the person schema and a free job "{prompt}" at once')
def step_both(context: Any, prompt: str) -> None:
    bodies = [
        {"prompt": PERSON_PROMPT, "temperature": 0, "response_format": PERSON_FORMAT},
        {"prompt": prompt, "temperature": 0, "max_tokens": 24},
    ]
    jobs = [submit(context, **body) for body in bodies]
    with ThreadPoolExecutor(2) as pool:
        context.person, context.free = pool.map(lambda job: _read(context, job), jobs)
    context.pair = jobs


@then('the free job answers "{text}"')
def step_free_answer(context: Any, text: str) -> None:
    assert context.free.text == text, context.free.text


@then("the two jobs ran on one worker at the same time")
def step_same_worker(context: Any) -> None:
    records = [_record(context, job["job_id"]) for job in context.pair]
    assert len({r["worker"] for r in records}) == 1, records
    first_end = min(r["finished_at"] for r in records)
    assert all(r["first_token_at"] < first_end for r in records), records


@when("I submit a job held to the schema {schema}")
def step_bad_schema_job(context: Any, schema: str) -> None:
    context.jobs_before = _job_ids(context)
    format_ = {"type": "json_schema", "json_schema": {"name": "bad", "schema": json.loads(schema)}}
    context.response = post_job(context, prompt="hi", response_format=format_)


@when("I post a chat completion held to the schema {schema}")
def step_bad_schema_chat(context: Any, schema: str) -> None:
    format_ = {"type": "json_schema", "json_schema": {"name": "bad", "schema": json.loads(schema)}}
    body = {
        "model": DEFAULT_MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": format_,
    }
    context.response = httpx.post(
        f"{context.queen_url}/v1/chat/completions", json=body, headers=auth(context), timeout=30
    )


@then('the answer is 400 naming "{field}" and "{text}"')
def step_400_naming(context: Any, field: str, text: str) -> None:
    response: httpx.Response = context.response
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert field in (error.get("param"), error.get("field")), error
    assert text in error["message"], error


@then("no job was created")
def step_no_job(context: Any) -> None:
    assert _job_ids(context) == context.jobs_before


@given("the person schema is saved as {name} in the scenario's home")
def step_save_schema(context: Any, name: str) -> None:
    (context.home / name).write_text(json.dumps(PERSON))


@then("stdout is a JSON person with a name, an age and a city")
def step_stdout_person(context: Any) -> None:
    person = json.loads(context.result.stdout)
    assert set(person) == {"name", "age", "city"}, person
    assert isinstance(person["age"], int) and person["city"] in ("Paris", "Berlin", "Rome")
