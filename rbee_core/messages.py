"""The messages rbee's processes send each other, declared once for both ends.

A hive builds these and the queen reads them (a worker's ``ready`` line and heartbeats go to
its hive the same way), so each is a frozen dataclass with ``to_json`` for the sender and
``from_json`` for the receiver; the JSON forms are the ones docs/api.md documents. Receivers
ignore keys they do not know, so a newer process can add one without breaking an older peer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Self

__all__ = [
    "Device",
    "FinishReason",
    "HiveCapabilities",
    "HiveHeartbeat",
    "HiveRegistration",
    "HiveState",
    "WorkerHeartbeat",
    "WorkerInfo",
    "WorkerReady",
    "WorkerState",
]


class HiveState(StrEnum):
    """Where a hive stands with the queen: ``joining`` from registration until the queen
    knows its devices, then ``ready``; ``unreachable`` once its heartbeats stop."""

    JOINING = "joining"
    READY = "ready"
    UNREACHABLE = "unreachable"


class WorkerState(StrEnum):
    IDLE = "idle"
    BUSY = "busy"


class FinishReason(StrEnum):
    """Why a generation ended: the end of sequence or a stop string, ``max_tokens``, or a
    cancel (the client's, a deadline's, the queen's shutdown)."""

    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


class _Message:
    """``from_json`` for a dataclass: the fields it declares, other keys ignored."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True, slots=True)
class Device(_Message):
    """A device a hive can run workers on, as it is now."""

    id: str  # "cpu", "cuda:0", ...
    name: str
    total_memory: int  # bytes
    free_memory: int  # bytes
    cores: int | None = None

    def describe(self) -> str:
        """``cpu (CPU, 8 cores, 16 GiB)``, as narration shows it."""
        extra = f"{self.cores} cores, " if self.cores else ""
        return f"{self.id} ({self.name}, {extra}{self.total_memory / 2**30:.0f} GiB)"


@dataclass(frozen=True, slots=True)
class WorkerReady(_Message):
    """A worker's ``ready`` line on stdout, read by the hive that spawned it."""

    url: str
    pid: int
    device: str
    slots: int = 1
    backend: str = ""
    quantization: str = ""


@dataclass(frozen=True, slots=True)
class WorkerHeartbeat(_Message):
    """``POST /workers/{id}/heartbeat`` from a worker to its hive."""

    busy: bool = False
    running: int = 0
    waiting: int = 0
    jobs_served: int = 0
    idle_since: float = 0.0


@dataclass(frozen=True, slots=True)
class WorkerInfo(_Message):
    """A worker as its hive reports it (``GET /workers``, heartbeats, spawn answers)."""

    id: str
    hive: str
    model: str
    device: str
    url: str
    backend: str = ""
    quantization: str = ""
    pid: int | None = None
    state: WorkerState = WorkerState.IDLE
    slots: int = 1
    jobs_served: int = 0
    memory: int | None = None
    reserved: int = 0
    keep_alive: float | None = None
    idle_since: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        known = _known(cls, data)
        known["state"] = WorkerState(known.get("state", WorkerState.IDLE))
        return cls(**known)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"state": str(self.state)}


@dataclass(frozen=True, slots=True)
class HiveRegistration(_Message):
    """``POST /hives/register``: a hive joins the queen at ``url``."""

    name: str
    url: str


@dataclass(frozen=True, slots=True)
class HiveHeartbeat(_Message):
    """``POST /hives/heartbeat``: a hive is alive, and what it runs."""

    name: str
    url: str
    workers: list[WorkerInfo] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(
            name=data["name"],
            url=data["url"],
            workers=[WorkerInfo.from_json(w) for w in data.get("workers") or []],
            models=list(data.get("models") or []),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "workers": [w.to_json() for w in self.workers],
            "models": list(self.models),
        }


@dataclass(frozen=True, slots=True)
class HiveCapabilities(_Message):
    """``GET /capabilities``: what a hive has, asked once when it joins."""

    name: str
    url: str
    devices: list[Device] = field(default_factory=list)
    backends: dict[str, list[str]] = field(default_factory=dict)  # name -> formats it loads
    models: list[str] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)
    # What the hive says of itself for people and policies: ``{"ray_node": "3f2a..."}``.
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(
            name=data["name"],
            url=data["url"],
            devices=[Device.from_json(d) for d in data.get("devices") or []],
            backends={k: list(v) for k, v in (data.get("backends") or {}).items()},
            models=list(data.get("models") or []),
            workers=[WorkerInfo.from_json(w) for w in data.get("workers") or []],
            labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "devices": [d.to_json() for d in self.devices],
            "backends": self.backends,
            "models": list(self.models),
            "labels": dict(self.labels),
            "workers": [w.to_json() for w in self.workers],
        }
