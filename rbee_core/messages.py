"""The messages rbee's processes send each other, declared once for both ends.

A hive builds these and the queen reads them (a worker's ``ready`` line and heartbeats go to
its hive the same way), so each is a frozen dataclass with ``to_json`` for the sender and
``from_json`` for the receiver; the JSON forms are the ones docs/api.md documents. Receivers
ignore keys they do not know, so a newer process can add one without breaking an older peer.

What a hive sends the queen is held in the queen's memory and shown to every client, so its
lists and strings are capped (the ``MAX_`` constants, docs/api.md): a report over a cap is an
``InvalidRequest`` naming the field and the cap, never truncated silently.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Self

from rbee_core.errors import InvalidRequest

__all__ = [
    "HIVE_NAME_RULE",
    "MAX_BACKENDS",
    "MAX_DEVICES",
    "MAX_HIVE_MODELS",
    "MAX_HIVE_WORKERS",
    "MAX_LABELS",
    "MAX_LABEL_KEY",
    "MAX_LABEL_VALUE",
    "MAX_MODEL_NAME",
    "MAX_PEER_STRING",
    "Device",
    "FinishReason",
    "PartInfo",
    "HiveCapabilities",
    "HiveHeartbeat",
    "HiveRegistration",
    "HiveState",
    "WorkerHeartbeat",
    "WorkerInfo",
    "WorkerReady",
    "WorkerState",
    "check_hive_name",
]

HIVE_NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-'"
_HIVE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_HIVE_MODELS = 1_000  # model names in one hive's report
MAX_MODEL_NAME = 512  # characters of one model name
MAX_HIVE_WORKERS = 256  # workers in one hive's report
MAX_DEVICES = 64  # devices of one hive
MAX_BACKENDS = 64  # backends of one hive, and formats of one backend
MAX_LABELS = 32  # labels of one hive
MAX_LABEL_KEY = 64  # characters of a label's key
MAX_LABEL_VALUE = 256  # characters of a label's value
MAX_PEER_STRING = 2_048  # characters of any other string a peer reports (a URL, an id)


class HiveState(StrEnum):
    """Where a hive stands with the queen: ``joining`` from registration until the queen
    knows its devices, then ``ready``; ``unreachable`` once its heartbeats stop;
    ``draining`` while its jobs move elsewhere before it stops (it takes no new ones)."""

    JOINING = "joining"
    READY = "ready"
    UNREACHABLE = "unreachable"
    DRAINING = "draining"


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


def check_hive_name(name: object, field_name: str = "name") -> str:
    """``name`` if it is a valid hive name (``HIVE_NAME_RULE``), else ``InvalidRequest``."""
    if not isinstance(name, str) or not _HIVE_NAME.fullmatch(name):
        shown = repr(name)[:80]
        raise InvalidRequest(
            f"{field_name} must be a hive name: {HIVE_NAME_RULE}; got {shown}", field=field_name
        )
    return name


def _list(data: dict[str, Any], key: str, cap: int, field_name: str | None = None) -> list[Any]:
    value = data.get(key)
    field_name = field_name or key
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{key} must be a list", field=field_name)
    if len(value) > cap:
        raise InvalidRequest(
            f"{key}: at most {cap:,} items, got {len(value):,}", field=field_name, maximum=cap
        )
    return value


def _string(value: object, where: str, field_name: str, cap: int = MAX_PEER_STRING) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{where} must be a string", field=field_name)
    if len(value) > cap:
        raise InvalidRequest(
            f"{where}: at most {cap:,} characters, got {len(value):,}",
            field=field_name,
            maximum=cap,
        )
    return value


def _names(data: dict[str, Any], key: str, cap: int, length: int) -> list[str]:
    return [_string(v, f"{key}[{i}]", key, length) for i, v in enumerate(_list(data, key, cap))]


def _number(value: object, where: str, field_name: str, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{where} must be a number", field=field_name)


def _peer_workers(data: dict[str, Any]) -> list[WorkerInfo]:
    """The ``workers`` a hive reports, checked: a malformed one is a 400, not a crash
    later in the queen."""
    found = []
    for i, w in enumerate(_list(data, "workers", MAX_HIVE_WORKERS)):
        where = f"workers[{i}]"
        if not isinstance(w, dict):
            raise InvalidRequest(f"{where} must be an object", field="workers")
        for key in ("id", "hive", "model", "device", "url"):
            _string(w.get(key), f"{where}.{key}", "workers")
        for key in ("backend", "quantization", "state"):
            _string(w.get(key, ""), f"{where}.{key}", "workers")
        for key in ("slots", "jobs_served", "reserved"):
            _number(w.get(key, 0), f"{where}.{key}", "workers")
        for key in ("pid", "memory", "keep_alive", "idle_since"):
            _number(w.get(key), f"{where}.{key}", "workers", optional=True)
        if w.get("state", "idle") not in tuple(WorkerState):
            raise InvalidRequest(f"{where}.state must be idle or busy", field="workers")
        found.append(WorkerInfo.from_json(w))
    return found


def _backend_lists(data: dict[str, Any], key: str) -> dict[str, list[str]]:
    """``{backend name: [short names]}``: the formats a backend loads, the devices it runs on."""
    backends = data.get(key) or {}
    if not isinstance(backends, dict) or len(backends) > MAX_BACKENDS:
        raise InvalidRequest(
            f"{key} must be an object of at most {MAX_BACKENDS} backends",
            field=key,
            maximum=MAX_BACKENDS,
        )
    return {
        _string(k, "a backend's name", key, MAX_MODEL_NAME): [
            _string(f, f"{key}[{k!r}][{i}]", key, MAX_MODEL_NAME)
            for i, f in enumerate(_list(backends, k, MAX_BACKENDS, key))
        ]
        for k in backends
    }


def _labels(data: dict[str, Any]) -> dict[str, str]:
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        raise InvalidRequest("labels must be an object", field="labels")
    if len(labels) > MAX_LABELS:
        raise InvalidRequest(
            f"labels: at most {MAX_LABELS} labels, got {len(labels)}",
            field="labels",
            maximum=MAX_LABELS,
        )
    return {
        _string(k, "a label's key", "labels", MAX_LABEL_KEY): _string(
            str(v), f"label {k!r}", "labels", MAX_LABEL_VALUE
        )
        for k, v in labels.items()
    }


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
    # A split model: (hive, layers) of each part held on another hive.
    parts: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        known = _known(cls, data)
        known["state"] = WorkerState(known.get("state", WorkerState.IDLE))
        parts = known.get("parts") or ()
        if not isinstance(parts, list | tuple) or not all(
            isinstance(p, list | tuple)
            and len(p) == 2
            and isinstance(p[0], str)
            and isinstance(p[1], int)
            for p in parts
        ):
            raise InvalidRequest("a worker's parts must be [hive, layers] pairs", field="parts")
        known["parts"] = tuple((str(h), int(n)) for h, n in parts)
        return cls(**known)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"state": str(self.state)}


@dataclass(frozen=True, slots=True)
class HiveRegistration(_Message):
    """``POST /hives/register``: a hive joins the queen at ``url``; ``nonce`` is what it
    proves holding from that URL (rbee_core.peer_identity)."""

    name: str
    url: str
    nonce: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        name = check_hive_name(data.get("name"))
        url = _string(data.get("url"), "url", "url")
        nonce = data.get("nonce")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 256:
            raise InvalidRequest(
                "nonce is required: 16 to 256 random characters the hive proves holding "
                "from its URL (GET /identity)",
                field="nonce",
            )
        return cls(name=name, url=url, nonce=nonce)


@dataclass(frozen=True, slots=True)
class PartInfo(_Message):
    """A part of a split model a hive serves (heartbeats; ``GET /parts`` adds its endpoint
    and pid): which layers of which model, for the worker on which hive."""

    id: str
    model: str
    layers: int
    for_hive: str
    memory: int | None = None
    reserved: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        for key in ("id", "model", "for_hive"):
            _string(data.get(key), f"a part's {key}", "parts")
        for key in ("layers", "reserved"):
            value = data.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidRequest(f"a part's {key} must be a whole number", field="parts")
        _number(data.get("memory"), "a part's memory", "parts", optional=True)
        return cls(**_known(cls, data))


@dataclass(frozen=True, slots=True)
class HiveHeartbeat(_Message):
    """``POST /hives/heartbeat``: a hive is alive, and what it runs."""

    name: str
    url: str
    workers: list[WorkerInfo] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    parts: list[PartInfo] = field(default_factory=list)  # of split models, for other hives

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        parts = []
        for item in _list(data, "parts", MAX_HIVE_WORKERS):
            if not isinstance(item, dict):
                raise InvalidRequest("each of parts must be an object", field="parts")
            parts.append(PartInfo.from_json(item))
        return cls(
            name=check_hive_name(data.get("name")),
            url=_string(data.get("url"), "url", "url"),
            workers=_peer_workers(data),
            models=_names(data, "models", MAX_HIVE_MODELS, MAX_MODEL_NAME),
            parts=parts,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "workers": [w.to_json() for w in self.workers],
            "models": list(self.models),
            "parts": [p.to_json() for p in self.parts],
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
    # name -> the ids of this hive's devices it runs on (a CPU-only llama.cpp: ["cpu"]);
    # empty from a hive that predates it.
    backend_devices: dict[str, list[str]] = field(default_factory=dict)
    # What the hive says of itself for people and policies: ``{"ray_node": "3f2a..."}``.
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        devices = []
        for i, d in enumerate(_list(data, "devices", MAX_DEVICES)):
            if not isinstance(d, dict):
                raise InvalidRequest(f"devices[{i}] must be an object", field="devices")
            for key in ("id", "name"):
                _string(d.get(key), f"devices[{i}].{key}", "devices", MAX_MODEL_NAME)
            for key in ("total_memory", "free_memory"):
                _number(d.get(key), f"devices[{i}].{key}", "devices")
            _number(d.get("cores"), f"devices[{i}].cores", "devices", optional=True)
            devices.append(Device.from_json(d))
        return cls(
            name=check_hive_name(data.get("name")),
            url=_string(data.get("url"), "url", "url"),
            devices=devices,
            backends=_backend_lists(data, "backends"),
            backend_devices=_backend_lists(data, "backend_devices"),
            models=_names(data, "models", MAX_HIVE_MODELS, MAX_MODEL_NAME),
            workers=_peer_workers(data),
            labels=_labels(data),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "devices": [d.to_json() for d in self.devices],
            "backends": self.backends,
            "backend_devices": self.backend_devices,
            "models": list(self.models),
            "labels": dict(self.labels),
            "workers": [w.to_json() for w in self.workers],
        }
