"""Where untrusted JSON failed its typed declaration (a msgspec ``Struct``).

msgspec checks a value against its declaration at C speed, but says what went wrong in its
own words (``Expected `int` >= 1 - at `$.max_tokens```). ``fault_of`` reads that into a
``Fault``: the path to the bad value, what kind of fault it is and the value as it was
sent, so the declaration's owner can refuse it in the words its users know, naming the
field (``InvalidRequest``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

__all__ = ["Fault", "FaultKind", "fault_of"]

FaultKind = Literal["missing", "unknown", "type", "value"]

_WHERE = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\.(?P<key>\w+)|\[(?P<index>\d+|\.\.\.)\]")
_NAMED = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<key>[^`]*)`")


@dataclass(frozen=True, slots=True)
class Fault:
    """A value that failed its declaration: where (keys and indexes from the top), what
    was wrong (``missing``: a required key is absent; ``unknown``: a key is not declared;
    ``type``: a value of the wrong JSON type; ``value``: the right type outside its
    bounds, length, pattern or choices), and the value there as sent (None if absent)."""

    path: tuple[str | int, ...]
    kind: FaultKind
    value: Any

    @property
    def field(self) -> str | None:
        """The top-level key the fault is under (None: the body itself)."""
        return str(self.path[0]) if self.path else None

    def within(self, key: str) -> Fault:
        """The same fault as seen from inside ``key`` (its path without that first step)."""
        return Fault(self.path[1:] if self.path[:1] == (key,) else self.path, self.kind, self.value)


def fault_of(error: msgspec.ValidationError, data: Any) -> Fault:
    """The ``Fault`` msgspec's ``error`` describes, its value looked up in ``data`` (what
    was decoded)."""
    message = str(error)
    path: list[str | int] = []
    where = _WHERE.search(message)
    if where is not None:
        message = message[: where.start()]
        for step in _STEP.finditer(where["path"]):
            index = step["index"]
            if index == "...":  # a key of a free-form map: the path stops at the map
                break
            path.append(step["key"] if index is None else int(index))
    named = _NAMED.match(message)
    kind: FaultKind
    if named is not None:
        path.append(named["key"])
        kind = "missing" if named["what"] == "missing required" else "unknown"
    else:
        kind = "type" if ", got `" in message else "value"
    return Fault(tuple(path), kind, _at(data, path))


def _at(data: Any, path: list[str | int]) -> Any:
    for step in path:
        if isinstance(step, str) and isinstance(data, dict):
            data = data.get(step)
        elif isinstance(step, int) and isinstance(data, list | tuple) and step < len(data):
            data = data[step]
        else:
            return None
    return data
