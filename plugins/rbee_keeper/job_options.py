"""A job's options on the keeper's command line (``infer``, ``chat``), made from the job
contract (rbee_core.job_request): one option per field a person types there, named, typed
and described as the field is declared. A field the commands take another way is in
``NOT_OPTIONS``, with how; a test holds every other field to an option.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from msgspec import inspect as types

from rbee_core.job_request import JobRequest

__all__ = ["DEFAULT_MODEL", "NOT_OPTIONS", "job_fields", "job_options"]

DEFAULT_MODEL = "smollm2-135m"

NOT_OPTIONS = {
    "prompt": "the PROMPT argument, or stdin (infer); each line read (chat)",
    "messages": "--system, and the conversation so far (chat)",
    "raw": "infer's --raw",
    "response_format": "infer's --json-schema FILE",
    "tools": "offered by the APIs (/v1/chat/completions...), not the keeper",
    "embed": "embedding jobs come through /v1/embeddings, not the keeper",
}
"""The job fields the keeper's job commands take another way than an option of their own
name, and how."""

# What the keeper says and does differently from the field's declaration.
_SENT_WHEN_LEFT_OUT = ("model", "max_tokens", "temperature")  # shown in --help, always sent
_OWN: dict[str, dict[str, Any]] = {
    "model": {"names": ("-m",), "default": DEFAULT_MODEL},
    "hive": {
        "names": ("--node",),
        "help": "Run on this hive (see: rbee-keeper hive list); --node is the same.",
    },
    "stop": {"help": "Stop when this text appears (repeatable)."},
}
_CLICK_TYPES = {types.IntType: int, types.FloatType: float, types.StrType: str}

F = TypeVar("F", bound=Callable[..., Any])


def _option(field: types.Field) -> Callable[[F], F]:
    """The click option of one job field: its type (a list of them: a repeatable option),
    its description as help."""
    kind, many, description = field.type, False, ""
    while isinstance(kind, types.Metadata | types.UnionType):
        if isinstance(kind, types.Metadata):
            description = description or (kind.extra_json_schema or {}).get("description", "")
            kind = kind.type
        else:
            many = many or any(isinstance(t, types.VarTupleType) for t in kind.types)
            kind = kind.types[0]  # the value's own type: before None, or a list of it
    own = _OWN.get(field.name, {})
    sent = field.name in _SENT_WHEN_LEFT_OUT
    return click.option(
        "--" + field.name.replace("_", "-"),
        *own.get("names", ()),
        field.name,
        type=_CLICK_TYPES[type(kind)],
        multiple=many,
        default=own.get("default", field.default) if sent else None,
        show_default=sent,
        help=own.get("help", description),
    )


def job_options(function: F) -> F:
    """Decorate a job command with an option for each field of the job contract a person
    types (all but ``NOT_OPTIONS``), in the contract's order."""
    info = types.type_info(JobRequest)
    assert isinstance(info, types.StructType)
    for field in reversed(info.fields):
        if field.name not in NOT_OPTIONS:
            function = _option(field)(function)
    return function


def job_fields(**options: Any) -> dict[str, Any]:
    """A job's fields from its options (``job_options``), leaving out what was not given:
    the queen's defaults apply."""
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in options.items()
        if value is not None and value != ()
    }
