"""The OpenAPI description of what the job routes validate themselves.

``POST /jobs`` decodes its body itself (``JobRequest.from_json``) and ``GET /jobs`` its query
(routes.py), so that every error names its field or parameter in rbee's error shape; this
gives Litestar their schemas for ``/schema/openapi.json``, which clients and the API fuzz
test read: the body's from the job contract's own declaration (rbee_core.job_request), the
page parameters' from ``LIST_PARAMETERS``.
"""

from __future__ import annotations

import re
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

from rbee_core.job_request import JobRequest
from rbee_core.jobs import JobState
from rbee_queen.job_store import DEFAULT_PAGE, MAX_PAGE

__all__ = [
    "JOB_SCHEMA",
    "LIST_PARAMETERS",
    "ListJobsOperation",
    "SubmitJobOperation",
    "schema_of",
]

_CAMEL = re.compile(r"(?<=[a-z])([A-Z])")


def schema_of(spec: dict[str, Any]) -> Schema:
    """A Litestar ``Schema`` for a JSON Schema dict: each keyword as its snake_case field."""
    fields: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "type":
            value = OpenAPIType(value)
        elif key == "properties":
            value = {k: schema_of(v) for k, v in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
            value = schema_of(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            value = [schema_of(v) for v in value]
        fields[_CAMEL.sub(r"_\1", key).lower()] = value
    return Schema(**fields)


JOB_SCHEMA = schema_of(JobRequest.json_schema())


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
