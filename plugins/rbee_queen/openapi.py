"""The OpenAPI description of what the job routes validate themselves.

``POST /jobs`` validates its body (rbee_core.jobs) and ``GET /jobs`` its query (routes.py)
themselves, so that every error names its field or parameter in rbee's error shape; this
turns their declarations (``JOB_BODY_SCHEMA``, the page parameters) into Litestar's schema
objects for ``/schema/openapi.json``, which clients and the API fuzz test read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    RequestBody,
    Schema,
)

from rbee_core.jobs import JOB_BODY_SCHEMA, JobState
from rbee_queen.job_store import DEFAULT_PAGE, MAX_PAGE

__all__ = [
    "JOB_SCHEMA",
    "LIST_PARAMETERS",
    "ListJobsOperation",
    "SubmitJobOperation",
    "schema_of",
]

# JSON Schema's camelCase keywords as Litestar's Schema fields.
_KEYWORDS = {
    "additionalProperties": "additional_properties",
    "allOf": "all_of",
    "anyOf": "any_of",
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
        elif key in ("oneOf", "anyOf", "allOf"):
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


LIST_PARAMETERS: dict[str, tuple[dict[str, Any], str]] = {
    "limit": (
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
        f"most records in the answer (default {DEFAULT_PAGE})",
    ),
    "before": (
        {"type": "string", "minLength": 1},
        "the `next` cursor of the previous page: the records older than its last one",
    ),
    "state": (
        {"type": "string", "enum": [state.value for state in JobState]},
        "only jobs in this state",
    ),
    "model": ({"type": "string", "minLength": 1}, "only jobs for this model, as they named it"),
}
"""``GET /jobs``'s query parameters: their JSON Schema and what each means."""


@dataclass
class ListJobsOperation(Operation):
    def __post_init__(self) -> None:
        self.parameters = [
            Parameter(
                name=name,
                param_in="query",
                required=False,
                schema=schema_of(spec),
                description=description,
            )
            for name, (spec, description) in LIST_PARAMETERS.items()
        ]
