"""What shape a job's answer must have: free text, any JSON object, or JSON that validates
against a schema.

The shape is OpenAI's ``response_format`` (the job API takes it as is, so one body works on
``POST /jobs`` and ``/v1/chat/completions``). Here it is only checked for its structure;
whether a schema compiles to a grammar is the constraining library's question, asked by the
queen before it accepts the job (``rbee_structured``), and the backend enforces it while
decoding: every token is masked to what keeps the output valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rbee_core.errors import InvalidRequest
from rbee_core.json_schema import closed

__all__ = ["KINDS", "ResponseFormat"]

KINDS = ("text", "json_object", "json_schema")
MAX_SCHEMA_CHARS = 100_000
# ``json_object`` asks for any JSON object: as a schema, that is all it says.
_ANY_OBJECT = '{"type": "object"}'


def _refuse(message: str) -> InvalidRequest:
    return InvalidRequest(f"response_format: {message}", field="response_format")


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """A validated ``response_format``. ``schema`` is the JSON Schema the output must
    validate against, as canonical JSON text (None for free text), as the client sent it;
    ``enforced`` is what decoding holds the output to."""

    kind: str
    name: str = ""
    schema: str | None = None
    strict: bool = False

    @property
    def constrained(self) -> bool:
        return self.schema is not None

    @property
    def enforced(self) -> str | None:
        """The schema decoding holds the output to: under ``strict``, with its objects
        closed (``rbee_core.json_schema.closed``), as OpenAI's strict mode has them."""
        if self.schema is None or not self.strict:
            return self.schema
        return json.dumps(closed(json.loads(self.schema)), separators=(",", ":"))

    def describe(self) -> str:
        """For narration: what the job's output is held to."""
        if self.kind == "json_schema":
            return f"JSON schema {self.name!r}" if self.name else "a JSON schema"
        return "a JSON object" if self.kind == "json_object" else "free text"

    @classmethod
    def from_json(cls, value: Any) -> ResponseFormat:
        """Validate a decoded ``response_format``; raise ``InvalidRequest`` naming the problem."""
        if not isinstance(value, dict):
            raise _refuse(f"must be an object with a type ({', '.join(KINDS)})")
        kind = value.get("type")
        if kind not in KINDS:
            raise _refuse(f"type must be one of {', '.join(KINDS)}, got {kind!r}")
        if kind == "text":
            return cls("text")
        if kind == "json_object":
            return cls("json_object", schema=_ANY_OBJECT)
        spec = value.get("json_schema")
        if not isinstance(spec, dict):
            raise _refuse('type "json_schema" needs json_schema: {"name": ..., "schema": {...}}')
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise _refuse("json_schema.schema must be a JSON Schema object")
        name = spec.get("name", "")
        if not isinstance(name, str):
            raise _refuse(f"json_schema.name must be a string, got {name!r}")
        strict = spec.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise _refuse(f"json_schema.strict must be true or false, got {strict!r}")
        text = json.dumps(schema, separators=(",", ":"))
        if len(text) > MAX_SCHEMA_CHARS:
            raise _refuse(f"the schema is {len(text)} characters, at most {MAX_SCHEMA_CHARS}")
        return cls("json_schema", name, text, bool(strict))

    def to_json(self) -> dict[str, Any]:
        if self.kind != "json_schema" or self.schema is None:
            return {"type": self.kind}
        spec: dict[str, Any] = {"name": self.name, "schema": json.loads(self.schema)}
        if self.strict:
            spec["strict"] = True
        return {"type": "json_schema", "json_schema": spec}
