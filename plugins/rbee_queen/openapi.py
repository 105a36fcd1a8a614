"""The OpenAPI description of a job request body.

``POST /jobs`` validates its body itself (rbee_core.jobs, so every error names its field);
this only documents the shape for the schema at ``/schema/openapi.json``, which clients and
the API fuzz test read.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from rbee_core.jobs import LIMITS, MAX_PROMPT_CHARS, MAX_STOP_SEQUENCES

__all__ = ["JOB_SCHEMA", "SubmitJobOperation"]


def _range(kind: OpenAPIType, name: str, **extra: object) -> Schema:
    low, high = LIMITS[name]
    return Schema(type=kind, minimum=low, maximum=high, **extra)  # type: ignore[arg-type]


_TEXT = Schema(type=OpenAPIType.STRING, min_length=1)
JOB_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["model", "prompt"],
    additional_properties=False,
    properties={
        "model": _TEXT,
        "prompt": Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_PROMPT_CHARS),
        "max_tokens": _range(OpenAPIType.INTEGER, "max_tokens"),
        "temperature": _range(OpenAPIType.NUMBER, "temperature"),
        "top_p": _range(OpenAPIType.NUMBER, "top_p", exclusive_minimum=0.0),
        "top_k": _range(OpenAPIType.INTEGER, "top_k"),
        "seed": _range(OpenAPIType.INTEGER, "seed"),
        "stop": Schema(
            one_of=[
                _TEXT,
                Schema(type=OpenAPIType.ARRAY, items=_TEXT, max_items=MAX_STOP_SEQUENCES),
            ]
        ),
        "raw": Schema(type=OpenAPIType.BOOLEAN),
        "messages": Schema(
            type=OpenAPIType.ARRAY,
            min_items=1,
            items=Schema(
                type=OpenAPIType.OBJECT,
                required=["role", "content"],
                properties={
                    "role": Schema(type=OpenAPIType.STRING, enum=["system", "user", "assistant"]),
                    "content": Schema(type=OpenAPIType.STRING),
                },
            ),
        ),
        "hive": _TEXT,
        "device": _TEXT,
        "backend": _TEXT,
        "keep_alive": Schema(type=OpenAPIType.NUMBER, exclusive_minimum=0.0),
        "timeout": Schema(type=OpenAPIType.NUMBER, exclusive_minimum=0.0),
    },
)


@dataclass
class SubmitJobOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=JOB_SCHEMA)}, required=True
        )
