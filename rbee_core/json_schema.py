"""Rewriting a JSON Schema everywhere it nests: one walk for every rewrite that must reach
each subschema (closing objects under ``strict``, bounding what a decoder could write
forever), so none of them forgets a keyword the others know."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["closed", "resolved", "rewrite"]

# Keywords whose value is a map of names to subschemas, a list of subschemas, or one.
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_LISTS = ("items", "prefixItems", "anyOf", "oneOf", "allOf")
_SUBSCHEMA_ONE = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
)


def rewrite(schema: Any, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """A copy of ``schema`` with ``change`` applied to it and to every subschema it holds.

    ``change`` gets a shallow copy of one (sub)schema and returns what replaces it; the
    walk then goes on into the subschemas of what it returned. A boolean schema (``true``,
    ``false``) and anything that is not a schema is left as it is.
    """
    if not isinstance(schema, dict):
        return schema
    out = change(dict(schema))
    for key in _SUBSCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: rewrite(sub, change) for name, sub in out[key].items()}
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [rewrite(sub, change) for sub in out[key]]
    for key in _SUBSCHEMA_ONE:
        if isinstance(out.get(key), dict):
            out[key] = rewrite(out[key], change)
    return out


def closed(schema: Any) -> Any:
    """``schema`` as OpenAI's strict mode reads it: an object that names its properties and
    says nothing of others allows no others (``additionalProperties: false``).

    JSON Schema's own default allows any other property, and a constrained small model
    takes that door: it invents a property and loops inside it until its token limit. A
    schema that says ``additionalProperties`` keeps what it says.
    """

    def close(sub: dict[str, Any]) -> dict[str, Any]:
        if "additionalProperties" not in sub and (
            "properties" in sub or "patternProperties" in sub
        ):
            sub["additionalProperties"] = False
        return sub

    return rewrite(schema, close)


def resolved(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each ``{"$ref": "#/$defs/NAME"}`` replaced by that definition, and
    no ``$defs`` left: one self-contained schema (as msgspec's are not). The definitions
    must not refer to themselves."""
    defs = schema.get("$defs", {})

    def inline(sub: dict[str, Any]) -> dict[str, Any]:
        ref = sub.pop("$ref", None)
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            sub = {**defs[ref.removeprefix("#/$defs/")], **sub}
        sub.pop("$defs", None)
        return sub

    out: dict[str, Any] = rewrite(schema, inline)
    return out
