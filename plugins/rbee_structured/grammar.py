"""A job's JSON Schema as a llguidance grammar, checked before the job is accepted."""

from __future__ import annotations

import json

from rbee_core.errors import InvalidRequest
from rbee_core.jobs import JobRequest

__all__ = ["check_request", "compile_schema"]


def compile_schema(schema: str) -> str:
    """The grammar that holds output to ``schema`` (JSON text); ``InvalidRequest`` naming
    the problem if llguidance cannot enforce it (an unknown type, a bad regex pattern...)."""
    from llguidance import LLMatcher

    try:
        grammar = LLMatcher.grammar_from_json_schema(
            json.loads(schema),
            # One compact JSON layout: a small model given free whitespace can pad forever.
            defaults={"whitespace_flexible": False},
        )
    except (ValueError, TypeError) as exc:
        raise _unusable(str(exc)) from None
    problem = LLMatcher.validate_grammar(grammar)
    if problem:
        raise _unusable(problem)
    return grammar


def check_request(request: JobRequest) -> None:
    """Refuse, before it is accepted, a job whose schema cannot be enforced."""
    if request.response_format is not None and request.response_format.schema is not None:
        compile_schema(request.response_format.schema)


def _unusable(problem: str) -> InvalidRequest:
    said = " ".join(problem.split())[:300] or "unknown error"  # one line, whatever it said
    return InvalidRequest(
        f"response_format: the JSON schema cannot be enforced: {said}", field="response_format"
    )
