"""The queen's view of its hives: who registered, when each last spoke, what it runs.

A hive is ``joining`` from registration to its first heartbeat, then ``ready``; a hive that
misses its heartbeats for ``timeout`` seconds is ``unreachable`` and gets no new job until it
speaks again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rbee_core.errors import HiveConflict, UnknownHive
from rbee_core.messages import Device, HiveHeartbeat, HiveState, WorkerInfo

__all__ = ["HiveConflict", "HiveRecord", "HiveRegistry", "UnknownHive"]


@dataclass(eq=False)
class HiveRecord:
    name: str
    url: str
    state: HiveState = HiveState.JOINING
    registered_at: float = field(default_factory=time.time)
    last_heartbeat: float | None = None
    devices: list[Device] = field(default_factory=list)
    backends: dict[str, list[str]] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # what it says of itself
    started_here: bool = False  # the queen stops only the hives it started
    problem: str | None = None  # why the queen cannot use it now, if it knows
    learning: bool = False  # the queen is asking it for its capabilities
    first_heartbeat: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ready(self) -> bool:
        return self.state == HiveState.READY

    def describe(self) -> str:
        """``ray-3f2a1b0c (ray_node=3f2a1b0c...)``: its name, and its labels if any."""
        labels = ", ".join(f"{k}={v}" for k, v in self.labels.items())
        return f"{self.name} ({labels})" if labels else self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "state": str(self.state),
            "last_heartbeat": self.last_heartbeat,
            "devices": [d.to_json() for d in self.devices],
            "backends": self.backends,
            "models": self.models,
            "workers": [w.to_json() for w in self.workers],
            "labels": self.labels,
            "started_by_queen": self.started_here,
            "problem": self.problem,
        }


class HiveRegistry:
    """Every hive the queen knows, by name; iterate it for the records."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.hives: dict[str, HiveRecord] = {}

    def __iter__(self) -> Iterator[HiveRecord]:
        return iter(list(self.hives.values()))

    def __len__(self) -> int:
        return len(self.hives)

    def names(self) -> list[str]:
        return sorted(self.hives)

    def find(self, name: str) -> HiveRecord | None:
        return self.hives.get(name)

    def ready(self) -> list[HiveRecord]:
        return [r for r in self.hives.values() if r.ready]

    def remove(self, name: str) -> None:
        self.hives.pop(name, None)

    def workers(self) -> list[WorkerInfo]:
        """Every worker of every hive, as its hive last reported it."""
        return [w for r in self.hives.values() for w in r.workers]

    def get(self, name: str) -> HiveRecord:
        try:
            return self.hives[name]
        except KeyError:
            raise UnknownHive(name, self.names()) from None

    def check_free(self, name: str, url: str) -> None:
        """Refuse a second hive under a name a live hive already has."""
        current = self.hives.get(name)
        if current is not None and current.url != url and current.state != HiveState.UNREACHABLE:
            raise HiveConflict(
                f"a hive named {name!r} is already registered from {current.url}; "
                "stop it first, or give this one another --name",
                hive=name,
            )

    def register(self, name: str, url: str) -> HiveRecord:
        """Add a hive, or take back one that restarted (see ``check_free``)."""
        self.check_free(name, url)
        current = self.hives.get(name)
        record = HiveRecord(name, url)
        if current is not None:
            record.started_here = current.started_here
            record.first_heartbeat = current.first_heartbeat
        self.hives[name] = record
        return record

    def heartbeat(self, beat: HiveHeartbeat) -> HiveRecord:
        record = self.hives.get(beat.name)
        if record is None:
            raise UnknownHive(beat.name, self.names())
        record.last_heartbeat = time.time()
        record.workers = list(beat.workers)
        record.models = list(beat.models)
        if record.state != HiveState.READY and record.devices:
            record.state = HiveState.READY
        record.first_heartbeat.set()
        return record

    def silent(self) -> list[HiveRecord]:
        """Ready hives whose last heartbeat is older than the timeout."""
        now = time.time()
        return [
            r
            for r in self.hives.values()
            if r.state == HiveState.READY
            and r.last_heartbeat is not None
            and now - r.last_heartbeat > self.timeout
        ]
