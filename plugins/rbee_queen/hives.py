"""The queen's view of its hives: who registered, when each last spoke, what it runs.

A hive is ``joining`` from registration to its first heartbeat, then ``ready``; a hive that
misses its heartbeats for ``timeout`` seconds is ``unreachable`` and gets no new job until it
speaks again.

A name is bound to the URL it registered from and to the secret the queen issued then
(rbee_core.peer_identity): a heartbeat without that secret is refused, so holding the API
key is not enough to speak for a hive (and be sent its jobs' prompts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rbee_core.errors import HiveConflict, HiveIdentity, UnknownHive
from rbee_core.messages import Device, HiveHeartbeat, HiveState, PartInfo, WorkerInfo
from rbee_core.peer_identity import HIVE_TOKEN_HEADER, new_secret, same_secret

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
    backend_devices: dict[str, list[str]] = field(default_factory=dict)  # name -> device ids
    models: list[str] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)
    parts: list[PartInfo] = field(default_factory=list)  # of split models it serves
    labels: dict[str, str] = field(default_factory=dict)  # what it says of itself
    started_here: bool = False  # the queen stops only the hives it started
    problem: str | None = None  # why the queen cannot use it now, if it knows
    learning: bool = False  # the queen is asking it for its capabilities
    first_heartbeat: asyncio.Event = field(default_factory=asyncio.Event)
    # Issued at registration, answered to the hive once, asked on its every report.
    secret: str = field(default_factory=new_secret, repr=False)

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
            "backend_devices": self.backend_devices,
            "models": self.models,
            "workers": [w.to_json() for w in self.workers],
            "parts": [p.to_json() for p in self.parts],
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

    def check_free(self, name: str, url: str, launched: bool = False) -> None:
        """Refuse a hive under a name another URL has, live or not: a name stays bound to
        its URL until the hive is stopped (``DELETE /hives/{name}``) or the queen restarts.
        The same URL may register again (a hive restarting there; it proves the URL is its
        own, ``Fleet.check_identity``), and so may the hive the queen itself last started
        under that name (``launched``: it showed the launch token the queen gave it), which
        can come back on another port."""
        current = self.hives.get(name)
        if current is None or current.url == url or launched:
            return
        if current.state == HiveState.UNREACHABLE:
            raise HiveConflict(
                f"hive {name!r} is registered from {current.url}, now unreachable; its name "
                "stays bound to that URL (a hive restarting there takes it back): stop it "
                f"first (rbee-keeper hive stop {name}), or give this one another --name",
                hive=name,
            )
        raise HiveConflict(
            f"a hive named {name!r} is already registered from {current.url}; "
            "stop it first, or give this one another --name",
            hive=name,
        )

    def register(self, name: str, url: str, launched: bool = False) -> HiveRecord:
        """Add a hive, or take back one that restarted (see ``check_free``), with a new
        secret: the old one stops working."""
        self.check_free(name, url, launched)
        current = self.hives.get(name)
        record = HiveRecord(name, url)
        if current is not None:
            record.started_here = current.started_here
            record.first_heartbeat = current.first_heartbeat
        self.hives[name] = record
        return record

    def check_secret(self, name: str, secret: str | None) -> HiveRecord:
        """The hive ``name`` if ``secret`` is the one it was issued, else ``HiveIdentity``
        (``UnknownHive`` if it never registered: it then registers again)."""
        record = self.hives.get(name)
        if record is None:
            raise UnknownHive(name, self.names())
        if not same_secret(secret, record.secret):
            raise HiveIdentity(
                f"refused a report for hive {name!r} without the secret the queen issued it "
                f"when it registered ({HIVE_TOKEN_HEADER} header); a hive that lost it "
                "registers again",
                hive=name,
            )
        return record

    def heartbeat(self, beat: HiveHeartbeat, secret: str | None) -> HiveRecord:
        record = self.check_secret(beat.name, secret)
        if beat.url != record.url:
            raise HiveIdentity(
                f"hive {beat.name!r} registered from {record.url}, not {beat.url}; "
                "a hive that moved registers again",
                hive=beat.name,
            )
        record.last_heartbeat = time.time()
        record.workers = list(beat.workers)
        record.parts = list(beat.parts)
        record.models = list(beat.models)
        if record.state not in (HiveState.READY, HiveState.DRAINING) and record.devices:
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
