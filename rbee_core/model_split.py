"""A model split across hives: the plan (how many of its layers each hive holds) and the
parts a worker is started with.

A model that fits no single machine runs on one worker whose hive holds some of its layers
and the rest are held by *parts* on other hives: llama.cpp's RPC servers, each behind a
guard that lets in only a peer proving it holds the part's token. The queen plans the split
from each hive's free memory (``plan_split``), asks each other hive to start its part, then
starts the worker with the parts (``ModelPart``) it reaches.

Pure: no I/O here, so the plan is tested rule by rule (tests/core/test_model_split.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rbee_core.errors import InvalidRequest, NoPlacement
from rbee_core.units import human_bytes

__all__ = ["ModelPart", "Share", "SplitPlan", "plan_split", "split_refusal"]


@dataclass(frozen=True, slots=True)
class ModelPart:
    """One hive's part of a split model as its worker reaches it: ``layers`` of the model's
    layers, served at ``endpoint`` (``host:port``), which lets in only a peer holding
    ``token``."""

    hive: str
    endpoint: str
    token: str
    layers: int

    def to_json(self) -> dict[str, Any]:
        return {
            "hive": self.hive,
            "endpoint": self.endpoint,
            "token": self.token,
            "layers": self.layers,
        }

    @classmethod
    def from_json(cls, data: Any) -> ModelPart:
        """From a peer's JSON; ``InvalidRequest`` naming the field that is wrong."""
        if not isinstance(data, dict):
            raise InvalidRequest("a model part must be an object", field="parts")
        for key in ("hive", "endpoint", "token"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise InvalidRequest(f"a model part's {key} must be a non-empty string", "parts")
        layers = data.get("layers")
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise InvalidRequest("a model part's layers must be a whole number >= 1", "parts")
        host, _, port = str(data["endpoint"]).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidRequest("a model part's endpoint must be host:port", field="parts")
        return cls(data["hive"], data["endpoint"], data["token"], layers)


@dataclass(frozen=True, slots=True)
class Share:
    """What one hive holds of a split model: ``layers`` layers, ``bytes`` in all."""

    hive: str
    layers: int
    bytes: int


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """The worker's hive and share, then each part's; their layers add up to the model's."""

    worker: Share
    parts: tuple[Share, ...]

    def describe(self, model: str, total: int, asked: bool = False) -> str:
        """The plan in words, for the job's narration."""
        shares = ", ".join(
            [f"{human_bytes(self.worker.bytes)} on {self.worker.hive} (worker)"]
            + [f"{human_bytes(p.bytes)} on {p.hive}" for p in self.parts]
        )
        layers = " + ".join(str(s.layers) for s in (self.worker, *self.parts))
        why = (
            f"splitting {model} ({human_bytes(total)}) as asked"
            if asked
            else f"no machine has room for model {model} ({human_bytes(total)}); splitting it"
        )
        return f"{why}: {shares} ({layers} layers)"


def plan_split(
    model: str,
    total: int,
    runtime: int,
    layers: int,
    free: Sequence[tuple[str, int]],
    part_runtime: int,
    *,
    use_all: bool = False,
    worker_first: bool = False,
) -> SplitPlan:
    """Which hives hold how many of ``model``'s ``layers``.

    ``total``: what a whole worker would hold, of which ``runtime`` is the process itself
    (the rest, weights and KV cache, is shared out by layer); ``free``: (hive, free bytes),
    the worker's hive first when it is chosen (``use_all``: the user named these hives),
    else every candidate, the one with most room becoming the worker's; ``part_runtime``:
    what a part's process holds besides its layers. Without ``use_all`` the fewest hives
    that together have room are used. Layers go in proportion to each hive's room, the
    remainder to those with most room left. ``NoPlacement`` when they have too little room
    together, naming both sizes. ``worker_first``: ``free``'s first runs the worker, the
    fewest others with most room take the parts."""
    if layers < 2:
        raise NoPlacement(f"{model} has {layers} layer(s): too few to split across hives")
    per_layer = max(1, -(-(total - runtime) // layers))
    if use_all:
        hives = list(free)
    elif worker_first:  # the worker's hive is chosen; the others by room
        hives = [free[0], *sorted(free[1:], key=lambda h: -h[1])]
    else:
        hives = sorted(free, key=lambda h: -h[1])
    if len(hives) < 2:
        raise NoPlacement(f"splitting {model} needs two hives or more; there is {len(hives)}")

    def room(index: int, free_bytes: int) -> int:
        overhead = runtime if index == 0 else part_runtime
        return max(0, (free_bytes - overhead) // per_layer)

    if not use_all:  # the fewest hives (most room first) that can hold every layer
        taken = 0
        for count, (_, free_bytes) in enumerate(hives, 1):
            taken += room(count - 1, free_bytes)
            if taken >= layers and count >= 2:
                hives = hives[:count]
                break
    fits = [room(i, f) for i, (_, f) in enumerate(hives)]
    if sum(fits) < layers:
        have = ", ".join(f"{h} {human_bytes(f)}" for h, f in hives)
        raise NoPlacement(
            f"{model} needs {human_bytes(total)} ({layers} layers of about "
            f"{human_bytes(per_layer)}), more than the hives have free together ({have})"
        )
    room_total = sum(fits)
    counts = [min(fit, math.floor(layers * fit / room_total)) for fit in fits]
    while sum(counts) < layers:  # the remainder, to the hive with most room left
        best = max(range(len(counts)), key=lambda i: (fits[i] - counts[i], -i))
        counts[best] += 1
    for i in range(1, len(counts)):  # every part holds at least one layer
        if counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: counts[j])
            counts[donor] -= 1
            counts[i] = 1
    shares = [
        Share(hive, count, (runtime if i == 0 else part_runtime) + count * per_layer)
        for i, ((hive, _), count) in enumerate(zip(hives, counts, strict=True))
    ]
    return SplitPlan(shares[0], tuple(shares[1:]))


def split_refusal(backend: str) -> str:
    """What a backend that cannot split says (``rbee_core.backends.SplittableBackend``)."""
    return (
        f"the {backend} backend cannot split a model across hives; llama.cpp can "
        "(a GGUF model, --backend llamacpp)"
    )
