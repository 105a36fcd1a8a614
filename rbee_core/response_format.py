"""What shape a job's answer must have: free text, any JSON object, or JSON that validates
against a schema.

The shape is OpenAI's ``response_format`` (the job API takes it as is, so one body works on
``POST /jobs`` and ``/v1/chat/completions``), declared here as msgspec Structs: they check
its structure and give its JSON Schema to the API's OpenAPI document. Whether a schema
compiles to a grammar is the constraining library's question, asked by the queen before it
accepts the job (``rbee_structured``), and the backend enforces it while decoding: every
token is masked to what keeps the output valid.
"""

from __future__ import annotations

import json
from typing import Any, Literal, get_args

import msgspec

from rbee_core.decoding import Fault, fault_of
from rbee_core.errors import InvalidRequest
from rbee_core.json_schema import closed

__all__ = ["KINDS", "JsonSchemaFormat", "ResponseFormat"]

Kind = Literal["text", "json_object", "json_schema"]
KINDS: tuple[str, ...] = get_args(Kind)
MAX_SCHEMA_CHARS = 100_000
# ``json_object`` asks for any JSON object: as a schema, that is all it says.
_ANY_OBJECT = '{"type": "object"}'
_NEEDS_SCHEMA = 'type "json_schema" needs json_schema: {"name": ..., "schema": {...}}'


def _refuse(message: str) -> InvalidRequest:
    return InvalidRequest(f"response_format: {message}", field="response_format")


class JsonSchemaFormat(msgspec.Struct, frozen=True):
    """``response_format.json_schema``: the JSON Schema the answer must validate against,
    its name, and whether it is ``strict`` (its objects closed, as OpenAI's strict mode)."""

    schema: dict[str, Any]
    name: str = ""
    strict: bool | None = None


class ResponseFormat(msgspec.Struct, frozen=True):
    """A ``response_format`` as the client sent it (OpenAI's shape). ``schema`` is the JSON
    Schema the output must validate against, as canonical JSON text (None for free text);
    ``enforced`` is what decoding holds the output to."""

    type: Kind
    json_schema: JsonSchemaFormat | None = None

    def __post_init__(self) -> None:
        if self.type != "json_schema":
            msgspec.structs.force_setattr(self, "json_schema", None)  # theirs to ignore
        elif self.json_schema is None:
            raise _refuse(_NEEDS_SCHEMA)
        elif len(text := self._text(self.json_schema)) > MAX_SCHEMA_CHARS:
            raise _refuse(f"the schema is {len(text)} characters, at most {MAX_SCHEMA_CHARS}")

    @staticmethod
    def _text(spec: JsonSchemaFormat) -> str:
        return json.dumps(spec.schema, separators=(",", ":"))

    @property
    def kind(self) -> str:
        return self.type

    @property
    def name(self) -> str:
        return self.json_schema.name if self.json_schema is not None else ""

    @property
    def strict(self) -> bool:
        return self.json_schema is not None and bool(self.json_schema.strict)

    @property
    def schema(self) -> str | None:
        """The schema as canonical JSON text; None for free text."""
        if self.json_schema is not None:
            return self._text(self.json_schema)
        return _ANY_OBJECT if self.type == "json_object" else None

    @property
    def constrained(self) -> bool:
        return self.type != "text"

    @property
    def enforced(self) -> str | None:
        """The schema decoding holds the output to: under ``strict``, with its objects
        closed (``rbee_core.json_schema.closed``), as OpenAI's strict mode has them."""
        schema = self.schema
        if schema is None or not self.strict:
            return schema
        return json.dumps(closed(json.loads(schema)), separators=(",", ":"))

    def describe(self) -> str:
        """For narration: what the job's output is held to."""
        if self.type == "json_schema":
            return f"JSON schema {self.name!r}" if self.name else "a JSON schema"
        return "a JSON object" if self.type == "json_object" else "free text"

    @classmethod
    def from_json(cls, value: Any) -> ResponseFormat:
        """Validate a decoded ``response_format``; raise ``InvalidRequest`` naming the problem."""
        try:
            return msgspec.convert(value, cls)
        except msgspec.ValidationError as error:
            raise cls.refusal(fault_of(error, value)) from None

    @staticmethod
    def refusal(fault: Fault) -> InvalidRequest:
        """The ``InvalidRequest`` for a fault in a ``response_format`` (its path from there)."""
        where = fault.path
        if not where:
            return _refuse(f"must be an object with a type ({', '.join(KINDS)})")
        if where[0] == "type":
            return _refuse(f"type must be one of {', '.join(KINDS)}, got {fault.value!r}")
        if where[1:2] == ("name",):
            return _refuse(f"json_schema.name must be a string, got {fault.value!r}")
        if where[1:2] == ("strict",):
            return _refuse(f"json_schema.strict must be true or false, got {fault.value!r}")
        if where[1:2] == ("schema",):
            return _refuse("json_schema.schema must be a JSON Schema object")
        return _refuse(_NEEDS_SCHEMA)

    def to_json(self) -> dict[str, Any]:
        """As the client sent it (the job record keeps it so)."""
        if self.json_schema is None:
            return {"type": self.type}
        spec: dict[str, Any] = {"name": self.json_schema.name, "schema": self.json_schema.schema}
        if self.json_schema.strict:
            spec["strict"] = True
        return {"type": "json_schema", "json_schema": spec}
