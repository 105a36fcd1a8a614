"""A job's JSON Schema as a llguidance grammar, checked before the job is accepted."""

from __future__ import annotations

import json
from typing import Any

from rbee_core.errors import InvalidRequest
from rbee_core.job_request import JobRequest
from rbee_core.json_schema import rewrite

__all__ = ["NUMBER_BOUND", "STRING_BOUND", "bounded", "check_request", "compile_schema"]

NUMBER_BOUND = 10**16 - 1
"""Numbers a schema leaves unbounded are held to 16 integral digits, as llama.cpp's own
JSON-schema grammar does: a small greedy model otherwise writes digits until its token
limit (``"population": 21480000000000000000...``), and the answer never parses."""

STRING_BOUND = 4096
"""Strings a schema leaves unbounded (no ``maxLength``, ``pattern``, ``format``, ``enum`` or
``const``) are held to this many characters: a small model that repeats itself inside a
string ends it there, and the answer still parses. More than any answer of a usual
``max_tokens`` holds; a schema's own ``maxLength`` wins."""

# A string so described is bounded already, or its bound is the describing keyword's.
_STRING_SHAPES = ("maxLength", "pattern", "format", "enum", "const")


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
    +-``NUMBER_BOUND``, and every string to ``STRING_BOUND`` characters (a copy; bounds it
    sets stay)."""
    return rewrite(schema, _bound)


def _bound(sub: dict[str, Any]) -> dict[str, Any]:
    types = sub.get("type")
    kinds = set(types) if isinstance(types, list) else {types}
    if kinds & {"integer", "number"}:
        if "maximum" not in sub and "exclusiveMaximum" not in sub:
            sub["maximum"] = NUMBER_BOUND
        if "minimum" not in sub and "exclusiveMinimum" not in sub:
            sub["minimum"] = -NUMBER_BOUND
    if "string" in kinds and not any(key in sub for key in _STRING_SHAPES):
        sub["maxLength"] = STRING_BOUND
    return sub


def check_request(request: JobRequest) -> None:
    """Refuse, before it is accepted, a job whose schema cannot be enforced."""
    if request.response_format is not None and request.response_format.enforced is not None:
        compile_schema(request.response_format.enforced)


def _unusable(problem: str) -> InvalidRequest:
    said = " ".join(problem.split())[:300] or "unknown error"  # one line, whatever it said
    return InvalidRequest(
        f"response_format: the JSON schema cannot be enforced: {said}", field="response_format"
    )
