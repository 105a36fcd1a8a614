"""rbee_core.json_schema: one walk reaches every subschema; strict closes objects."""

from __future__ import annotations

from typing import Any

from rbee_core.json_schema import closed, rewrite

NESTED: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "object", "properties": {"name": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "object", "properties": {"k": {}}}},
        "free": {"type": "object"},  # names no property: a map of anything, left open
        "open": {"type": "object", "properties": {}, "additionalProperties": True},
        "either": {"anyOf": [{"properties": {"a": {}}}, {"type": "null"}]},
    },
    "$defs": {"Inner": {"properties": {"x": {"type": "integer"}}}},
}


def test_closed_allows_no_property_an_object_leaves_out_wherever_it_nests() -> None:
    out = closed(NESTED)
    assert out["additionalProperties"] is False
    props = out["properties"]
    assert props["city"]["additionalProperties"] is False
    assert props["tags"]["items"]["additionalProperties"] is False
    assert props["either"]["anyOf"][0]["additionalProperties"] is False
    assert out["$defs"]["Inner"]["additionalProperties"] is False
    assert "additionalProperties" not in props["free"]
    assert props["open"]["additionalProperties"] is True  # what a schema says it keeps
    assert "additionalProperties" not in NESTED  # a copy: the request is kept as sent


def test_rewrite_leaves_boolean_schemas_and_non_schemas_alone() -> None:
    seen: list[dict[str, Any]] = []

    def note(sub: dict[str, Any]) -> dict[str, Any]:
        seen.append(sub)
        return sub

    schema = {"properties": {"a": True, "b": {"not": {"type": "null"}}}, "items": [False]}
    assert rewrite(schema, note) == schema
    assert len(seen) == 3  # the root, b and b's not; never True, False or the list
    assert rewrite(True, note) is True
