"""``response_format``: OpenAI's shape, checked in the job request, given back unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rbee_core.errors import InvalidRequest
from rbee_core.job_request import JobRequest
from rbee_core.response_format import ResponseFormat

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def test_a_json_schema_keeps_its_name_strictness_and_property_order() -> None:
    shape = ResponseFormat.from_json(
        {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    )
    assert shape.constrained and shape.name == "person" and shape.strict
    assert shape.schema is not None
    assert list(json.loads(shape.schema)["properties"]) == ["name", "age"]  # order is meaning
    assert shape.to_json() == {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": PERSON, "strict": True},
    }
    assert shape.describe() == "JSON schema 'person'"


def test_json_object_means_any_object_and_text_means_no_constraint() -> None:
    assert ResponseFormat.from_json({"type": "json_object"}).schema == '{"type": "object"}'
    assert not ResponseFormat.from_json({"type": "text"}).constrained


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("json", "must be an object"),
        ({"type": "xml"}, "type must be one of text, json_object, json_schema"),
        ({"type": "json_schema"}, "needs json_schema"),
        ({"type": "json_schema", "json_schema": {"schema": []}}, "must be a JSON Schema object"),
        ({"type": "json_schema", "json_schema": {"schema": {}, "name": 3}}, "name must be"),
        ({"type": "json_schema", "json_schema": {"schema": {}, "strict": "y"}}, "strict must"),
    ],
)
def test_a_malformed_response_format_is_refused_by_name(value: Any, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says) as caught:
        ResponseFormat.from_json(value)
    assert caught.value.field == "response_format"
    assert caught.value.message.startswith("response_format: ")


def test_a_job_request_carries_it_and_gives_it_back() -> None:
    body = {
        "model": "m",
        "prompt": "p",
        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}},
    }
    request = JobRequest.from_json(body)
    assert request.response_format is not None
    assert request.to_json()["response_format"] == body["response_format"]
    assert JobRequest.from_json(request.to_json()) == request
    plain = JobRequest.from_json({"model": "m", "prompt": "p", "response_format": {"type": "text"}})
    assert plain.response_format is None and "response_format" not in plain.to_json()


def test_strict_holds_to_the_schema_with_its_objects_closed_and_echoes_it_as_sent() -> None:
    sent = {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON, "strict": True}}
    shape = ResponseFormat.from_json(sent)
    assert shape.enforced is not None
    assert json.loads(shape.enforced) == PERSON | {"additionalProperties": False}
    assert shape.to_json() == sent  # the job record keeps what the client sent
    loose = ResponseFormat.from_json({"type": "json_schema", "json_schema": {"schema": PERSON}})
    assert loose.enforced == loose.schema  # without strict, JSON Schema's own default
