"""The OpenAPI description of a job request body.

``POST /jobs`` validates its body itself (rbee_core.jobs, so every error names its field);
this turns the core's declaration of that body (``JOB_BODY_SCHEMA``) into Litestar's schema
objects for ``/schema/openapi.json``, which clients and the API fuzz test read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from rbee_core.jobs import JOB_BODY_SCHEMA

__all__ = ["JOB_SCHEMA", "SubmitJobOperation", "schema_of"]

# JSON Schema's camelCase keywords as Litestar's Schema fields.
_KEYWORDS = {
    "additionalProperties": "additional_properties",
    "exclusiveMinimum": "exclusive_minimum",
    "maxItems": "max_items",
    "maxLength": "max_length",
    "minItems": "min_items",
    "minLength": "min_length",
    "oneOf": "one_of",
}


def schema_of(spec: dict[str, Any]) -> Schema:
    """A Litestar ``Schema`` for a JSON Schema dict (the keywords rbee's declarations use)."""
    fields: dict[str, Any] = {}
    for key, value in spec.items():
        name = _KEYWORDS.get(key, key)
        if key == "type":
            value = OpenAPIType(value)
        elif key == "properties":
            value = {k: schema_of(v) for k, v in value.items()}
        elif key == "items":
            value = schema_of(value)
        elif key == "oneOf":
            value = [schema_of(v) for v in value]
        fields[name] = value
    return Schema(**fields)


JOB_SCHEMA = schema_of(JOB_BODY_SCHEMA)


@dataclass
class SubmitJobOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=JOB_SCHEMA)}, required=True
        )
