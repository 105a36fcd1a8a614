"""A job's JSON Schema as a llguidance grammar, checked before the job is accepted."""

from __future__ import annotations

import json
from typing import Any

from rbee_core.errors import InvalidRequest
from rbee_core.jobs import JobRequest

__all__ = ["NUMBER_BOUND", "bounded", "check_request", "compile_schema"]

NUMBER_BOUND = 10**16 - 1
"""Numbers a schema leaves unbounded are held to 16 integral digits, as llama.cpp's own
JSON-schema grammar does: a small greedy model otherwise writes digits until its token
limit (``"population": 21480000000000000000...``), and the answer never parses."""

_SUBSCHEMAS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("items", "prefixItems", "anyOf", "oneOf", "allOf")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")


def compile_schema(schema: str) -> str:
    """The grammar that holds output to ``schema`` (JSON text); ``InvalidRequest`` naming
    the problem if llguidance cannot enforce it (an unknown type, a bad regex pattern...)."""
    from llguidance import LLMatcher

    try:
        grammar = LLMatcher.grammar_from_json_schema(
            bounded(json.loads(schema)),
            # One compact JSON layout: a small model given free whitespace can pad forever.
            defaults={"whitespace_flexible": False},
        )
    except (ValueError, TypeError) as exc:
        raise _unusable(str(exc)) from None
    problem = LLMatcher.validate_grammar(grammar)
    if problem:
        raise _unusable(problem)
    return grammar


def bounded(schema: Any) -> Any:
    """``schema`` with every integer and number it leaves unbounded held to
    +-``NUMBER_BOUND`` (a copy; bounds it sets stay)."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    types = out.get("type")
    kinds = set(types) if isinstance(types, list) else {types}
    if kinds & {"integer", "number"}:
        if "maximum" not in out and "exclusiveMaximum" not in out:
            out["maximum"] = NUMBER_BOUND
        if "minimum" not in out and "exclusiveMinimum" not in out:
            out["minimum"] = -NUMBER_BOUND
    for key in _SUBSCHEMAS:
        if isinstance(out.get(key), dict):
            out[key] = {name: bounded(sub) for name, sub in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [bounded(sub) for sub in out[key]]
    for key in _SCHEMA_ONE:
        if isinstance(out.get(key), dict):
            out[key] = bounded(out[key])
    return out


def check_request(request: JobRequest) -> None:
    """Refuse, before it is accepted, a job whose schema cannot be enforced."""
    if request.response_format is not None and request.response_format.schema is not None:
        compile_schema(request.response_format.schema)


def _unusable(problem: str) -> InvalidRequest:
    said = " ".join(problem.split())[:300] or "unknown error"  # one line, whatever it said
    return InvalidRequest(
        f"response_format: the JSON schema cannot be enforced: {said}", field="response_format"
    )
