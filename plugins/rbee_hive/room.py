"""The room check: whether a worker for a model fits on a device, and if not, which idle
workers to unload for it.

A worker needs its footprint: weights, runtime and KV cache, as its backend estimates them
from file headers and the device probe's free memory (never by importing an inference
library). It fits when that is free on the device for workers; its cache is cut down to
what fits, not below ``MIN_KV_TOKENS``, unless the user set its size. Each worker counts
for what it ``held`` (its resident memory or what it reserved, whichever is more), and each
worker still starting for what it reserved: two starting at once never take the same room.

When a job's worker does not fit, idle workers are unloaded, least recently used first,
each only once it agreed to retire (so that a job the queen sent it meanwhile is never
lost: rbee_worker/retire.py); never a busy one (running or queued jobs) and never a pinned
one (keep-alive -1). When that is not enough the job waits for busy workers, up to its
time; when no amount of waiting could free enough it fails at once, naming both sizes.
Whom to unload or wait for is ``room_plan.plan_room``'s choice, made from numbers alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import httpx

from rbee_core.backends import Backend, Footprint, SizedBackend
from rbee_core.errors import DeviceTooSmall, InvalidRequest
from rbee_core.messages import Device
from rbee_core.models import LocalModel
from rbee_core.narration import Narration
from rbee_core.units import human_bytes
from rbee_hive.devices import available_memory
from rbee_hive.room_plan import Holding, RoomPlan, describe_all, idle_words, plan_room
from rbee_hive.workers import Emit

__all__ = ["MIN_IDLE", "MIN_KV_TOKENS", "Room", "RoomCheck", "Tenant"]

log = logging.getLogger("rbee.hive")

# For a backend that cannot say what its workers hold (no ``footprint``): a guess from the
# file size.
MEMORY_FACTOR = {"gguf": 4.5, "safetensors": 1.2}
# A worker's KV cache is cut down to fit a tight device, but not below this many tokens.
MIN_KV_TOKENS = 2048
# A worker unloaded to make room must have been idle this long: the queen hands a worker its
# next queued job a moment after the last one ends, and that moment is not idleness.
MIN_IDLE = 1.0
# While a job waits for room, the plan is made again at least this often (``changed``
# wakes it sooner).
POLL = 0.5
ACTOR = "rbee-hive"

Key = tuple[str, str, str]
"""A worker start: (model, device, backend)."""


class Tenant(Protocol):
    """A worker as the room check sees it (``rbee_hive.workers.WorkerProcess``)."""

    id: str
    model: str
    backend: str
    device: str
    busy: bool
    idle_since: float
    reserved: int

    @property
    def alive(self) -> bool: ...
    @property
    def pinned(self) -> bool: ...
    def held(self) -> int: ...
    def memory(self) -> int | None: ...
    def describe(self) -> str: ...
    async def retire(self, http: httpx.AsyncClient, min_idle: float) -> str | None: ...
    async def stop(self) -> None: ...


W = TypeVar("W", bound=Tenant)


class PartTenant(Protocol):
    """A part of a split model this hive serves (``rbee_hive.parts.PartProcess``): it holds
    RAM for a worker elsewhere, and is never unloaded to make room (its worker would fail)."""

    id: str
    model: str
    reserved: int

    @property
    def alive(self) -> bool: ...
    def held(self) -> int: ...
    def memory(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Room:
    """A worker that fits: what it will hold, and the KV cache size to start it with when
    the device could not take the backend's default (``None``: the default)."""

    need: int
    kv_tokens: int | None
    message: str


class RoomCheck(Generic[W]):
    """Whether workers fit on a hive's devices, and making room for them.

    ``hive``: its name, for messages; ``devices``: the machine's devices as probed when the
    hive started (``rbee_hive.devices``); ``workers``: the hive's workers by id, read as
    they are at each check, and from which the workers it unloads are removed; ``http``:
    what asks a worker to retire; ``cpu_memory_limit``: the most the workers may hold in
    RAM; ``fixed_kv_cache``: whether the operator set the KV cache's size
    (``RBEE_KV_CACHE``), which the check then never cuts. The hive calls ``admit`` or
    ``make_room`` to start a worker, ``device`` for a device as workers may use it, and
    ``changed`` when a worker became idle or stopped.
    """

    def __init__(
        self,
        hive: str,
        devices: Sequence[Device],
        workers: MutableMapping[str, W],
        http: httpx.AsyncClient,
        cpu_memory_limit: int | None = None,
        fixed_kv_cache: bool = False,
        parts: Mapping[str, PartTenant] | None = None,
    ) -> None:
        self.hive = hive
        self.parts: Mapping[str, PartTenant] = {} if parts is None else parts
        self.fixed_kv_cache = fixed_kv_cache
        self.probed = tuple(devices)
        self.workers = workers
        self.http = http
        self.cpu_memory_limit = cpu_memory_limit
        self._reserved: dict[Key, int] = {}  # bytes of workers starting
        self._starts: dict[Key, asyncio.Task[W]] = {}
        # Jobs making room take turns: two unloading for each other would free too much.
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    # -- the devices ----------------------------------------------------------------------

    def devices(self) -> list[Device]:
        """Every device, as workers may use it (see ``device``)."""
        return [self._share(d) for d in self.probed]

    def device(self, device_id: str) -> Device:
        """The device as workers may use it. The CPU: less what the workers here will grow
        to (their KV caches fill as jobs run) and what starting workers will take, within
        ``--cpu-memory-limit``. A GPU: its free memory when the hive started, less what the
        workers here and starting ones reserved."""
        return self._share(self._probe(device_id))

    def _probe(self, device_id: str) -> Device:
        for d in self.probed:
            if d.id == device_id:
                return d
        known = ", ".join(d.id for d in self.probed)
        raise InvalidRequest(
            f"hive {self.hive} has no device {device_id!r}; its devices: {known}", "device"
        )

    def _share(self, device: Device) -> Device:
        workers = [w for w in self.workers.values() if w.device == device.id and w.alive]
        starting = sum(n for (_, d, _), n in self._reserved.items() if d == device.id)
        if device.id != "cpu":
            free = max(0, device.free_memory - starting - sum(w.reserved for w in workers))
            return Device(device.id, device.name, device.total_memory, free, device.cores)
        held: list[W | PartTenant] = [*workers, *(p for p in self.parts.values() if p.alive)]
        ahead = starting + sum(max(0, w.reserved - (w.memory() or 0)) for w in held)
        free = max(0, (available_memory() or device.free_memory) - ahead)
        if self.cpu_memory_limit is None:
            return Device(device.id, device.name, device.total_memory, free, device.cores)
        used = starting + sum(max(w.memory() or 0, w.reserved) for w in held)
        free = max(0, min(free, self.cpu_memory_limit - used))
        return Device(device.id, device.name, self.cpu_memory_limit, free, device.cores)

    # -- does it fit ----------------------------------------------------------------------

    def footprint(
        self, model: LocalModel, device_id: str, backend: Backend, share: float = 1.0
    ) -> Footprint | int:
        """The backend's ``footprint`` (it reads file headers: worth keeping while a job
        waits for room), or for one without, a guess in bytes from the file size.
        ``share``: the fraction of the model's layers the worker holds (a split model:
        rbee_core.model_split), of its weights and KV cache; its runtime is whole.

        The backend sizes its defaults from what the machine has free (the probe), not from
        the hive's share of it: that is what its worker would find and take; ``fit`` then
        cuts the cache to the share."""
        if not isinstance(backend, SizedBackend):
            size = model.path.stat().st_size if model.path.is_file() else 0
            return int(size * MEMORY_FACTOR.get(model.format, 1.5) * share)
        free = self._probe(device_id).free_memory
        if device_id == "cpu":  # RAM comes and goes as the machine runs: read it now
            free = available_memory() or free
        fp = backend.footprint(model, device_id, free)
        if share >= 1.0:
            return fp
        return Footprint(
            int(fp.weights * share), fp.runtime, int(fp.kv_per_token * share), fp.kv_tokens
        )

    def fit(
        self,
        model: LocalModel,
        device: Device,
        backend: Backend,
        fp: Footprint | int | None = None,
    ) -> Room:
        """The room for a worker of ``backend`` on ``device`` (as ``device`` says it is),
        or ``DeviceTooSmall``: its weights, runtime and KV cache (``fp``, else asked of the
        backend). A cache that does not fit is cut down to what does (not below
        ``MIN_KV_TOKENS``) unless ``RBEE_KV_CACHE`` set its size."""
        free = device.free_memory
        if fp is None:
            fp = self.footprint(model, device.id, backend)
        if isinstance(fp, int):
            if fp > free:
                raise self._too_small(model, device, backend, f"about {human_bytes(fp)}")
            return Room(fp, None, self._fits(model, device, backend, human_bytes(fp)))
        parts = (
            f"{human_bytes(fp.total)} (weights {human_bytes(fp.weights)}, runtime "
            f"{human_bytes(fp.runtime)}, KV cache {human_bytes(fp.kv_per_token * fp.kv_tokens)}"
            f" for {fp.kv_tokens:,} tokens)"
        )
        if fp.total <= free:
            return Room(fp.total, None, self._fits(model, device, backend, parts))
        fitting = (free - fp.weights - fp.runtime) // max(1, fp.kv_per_token)
        if self.fixed_kv_cache or fitting < MIN_KV_TOKENS:
            raise self._too_small(model, device, backend, parts)
        cut = fp.with_kv_tokens(fitting)
        return Room(
            cut.total,
            fitting,
            self._fits(model, device, backend, human_bytes(cut.total))
            + f", its KV cache cut to {fitting:,} tokens to fit (the default needs {parts})",
        )

    def _least_need(self, fp: Footprint | int) -> int:
        """The least a worker of this footprint could start with: its KV cache cut to
        ``MIN_KV_TOKENS`` unless ``RBEE_KV_CACHE`` set its size (see ``fit``)."""
        if isinstance(fp, int):
            return fp
        if self.fixed_kv_cache:
            return fp.total
        return min(fp.total, fp.with_kv_tokens(MIN_KV_TOKENS).total)

    def fit_part(self, model: str, need: int) -> None:
        """``DeviceTooSmall`` unless a part of ``need`` bytes fits in this machine's RAM now
        (parts are not started where idle workers would have to be unloaded first)."""
        device = self.device("cpu")
        if need > device.free_memory:
            raise DeviceTooSmall(
                f"a part of {model} needs {human_bytes(need)} on cpu, but hive {self.hive} "
                f"has only {human_bytes(device.free_memory)} free there",
                device="cpu",
            )

    def _fits(self, model: LocalModel, device: Device, backend: Backend, need: str) -> str:
        return (
            f"there is room in {device.id} for {model.name} on {backend.name}: it needs "
            f"{need}, {human_bytes(device.free_memory)} free"
        )

    def _too_small(
        self, model: LocalModel, device: Device, backend: Backend, need: str
    ) -> DeviceTooSmall:
        return DeviceTooSmall(
            f"{model.name} on {backend.name} needs {need} on {device.id}, but hive "
            f"{self.hive} has only {human_bytes(device.free_memory)} free there",
            device=device.id,
        )

    # -- reserving room for workers starting ----------------------------------------------

    def reserve(self, key: Key, need: int) -> None:
        """Hold ``need`` bytes on the device of ``key`` for a worker starting, until
        ``release``: no other worker fits in them meanwhile."""
        self._reserved[key] = need

    def release(self, key: Key) -> None:
        """The worker of ``key`` runs (it counts for itself now) or failed."""
        self._reserved.pop(key, None)

    def holdings(self, device_id: str) -> list[Holding]:
        """What each worker on the device, and each starting one, holds there: what making
        room chooses from."""
        found = [
            Holding(
                w.id,
                w.model,
                w.backend,
                w.held(),
                busy=w.busy,
                pinned=w.pinned,
                idle_since=w.idle_since,
            )
            for w in self.workers.values()
            if w.device == device_id and w.alive
        ]
        if device_id == "cpu":
            found += [
                Holding(p.id, p.model, "part", p.held(), busy=True, pinned=True)
                for p in self.parts.values()
                if p.alive
            ]
        found += [
            Holding(f"a worker starting for {m}", m, b, n, busy=True)
            for (m, d, b), n in self._reserved.items()
            if d == device_id
        ]
        return found

    def starts(self) -> list[asyncio.Task[W]]:
        """The worker starts under way."""
        return list(self._starts.values())

    def _start(
        self, key: Key, room: Room, start: Callable[[Room], asyncio.Task[W]]
    ) -> asyncio.Task[W]:
        """``start(room)``, its room reserved until it ends."""
        task = start(room)
        self._starts[key] = task
        self.reserve(key, room.need)

        def ended(_: object) -> None:
            self._starts.pop(key, None)
            self.release(key)

        task.add_done_callback(ended)
        return task

    # -- starting a worker ----------------------------------------------------------------

    def admit(
        self,
        model: LocalModel,
        device_id: str,
        backend: Backend,
        start: Callable[[Room], asyncio.Task[W]],
        share: float = 1.0,
    ) -> asyncio.Task[W]:
        """The start of a worker of ``backend`` for ``model`` on the device: the one under
        way, else ``start(room)`` if it fits now (else ``DeviceTooSmall``), its room
        reserved until it ends. ``share``: as for ``footprint``."""
        key = (model.name, device_id, backend.name)
        if (shared := self._starts.get(key)) is not None:
            return shared
        fp = self.footprint(model, device_id, backend, share)
        return self._start(key, self.fit(model, self.device(device_id), backend, fp), start)

    async def make_room(
        self,
        model: LocalModel,
        device_id: str,
        backend: Backend,
        start: Callable[[Room], asyncio.Task[W]],
        *,
        emit: Emit,
        wait: float,
        left: Callable[[], bool] = lambda: False,
        share: float = 1.0,
    ) -> asyncio.Task[W]:
        """Like ``admit``, for a job: when the worker does not fit, idle workers are
        unloaded for it and busy ones waited for, up to ``wait`` seconds, all said through
        ``emit``. ``DeviceTooSmall`` when it could never fit, did not within ``wait``, or
        the job that asked ``left`` meanwhile. Each try holds the lock (so that two jobs
        never unload for each other), the waits between them do not (so that a waiting job
        blocks no other)."""
        what = f"{model.name} on {backend.name}"
        key = (model.name, device_id, backend.name)
        if (shared := self._starts.get(key)) is not None:
            return shared
        deadline = time.monotonic() + wait
        told: tuple[str, ...] | None = None
        fp = self.footprint(model, device_id, backend, share)
        while True:
            async with self._lock:
                if (shared := self._starts.get(key)) is not None:
                    return shared  # another job started this worker meanwhile
                device = self.device(device_id)  # as it is now
                try:
                    return self._start(key, self.fit(model, device, backend, fp), start)
                except DeviceTooSmall as too_small:
                    plan = plan_room(
                        self._least_need(fp), device.free_memory, self.holdings(device_id)
                    )
                    if plan.never:
                        raise self._never(what, device_id, plan) from None
                    if plan.evict and await self._unload(plan.evict, what, emit):
                        continue
                    # Idle ones that refused to retire took a job since their last heartbeat.
                    blockers = plan.waiting_for or plan.evict
                    if wait <= 0 or not blockers:
                        raise too_small
                    if time.monotonic() >= deadline or left():
                        why = "the job that asked left" if left() else f"within {wait:.0f} s"
                        raise self._no_room(what, device_id, plan, blockers, why) from None
                    ids = tuple(h.id for h in blockers)
                    if ids != told:
                        told = ids
                        emit(self._waiting(what, device_id, plan, blockers))
            await self._room_changed(min(POLL, max(0.0, deadline - time.monotonic())))

    def changed(self) -> None:
        """A worker became idle or stopped: jobs waiting for room look again."""
        self._changed.set()

    async def _room_changed(self, within: float) -> None:
        """Return when ``changed`` was called, or after ``within`` seconds."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within)

    async def _unload(self, evict: tuple[Holding, ...], what: str, emit: Emit) -> bool:
        """Unload ``evict`` in order, each once it agreed to retire; whether any was."""
        unloaded = False
        for holding in evict:
            worker = self.workers.get(holding.id)
            if worker is None:  # it stopped meanwhile: the plan is made again
                return True
            refused = await worker.retire(self.http, MIN_IDLE)
            if refused is not None:
                log.info("worker %s not unloaded: %s", worker.describe(), refused)
                return unloaded
            idle = idle_words(time.time() - worker.idle_since)
            emit(
                Narration(
                    ACTOR,
                    "unload",
                    f"unloading {worker.model} ({worker.id} on {worker.backend}, idle {idle}, "
                    f"{human_bytes(holding.held)}) to make room for {what}",
                )
            )
            log.info("unloading worker %s to make room for %s", worker.describe(), what)
            self.workers.pop(worker.id, None)
            await worker.stop()
            unloaded = True
        return unloaded

    def _waiting(
        self, what: str, device_id: str, plan: RoomPlan, blockers: tuple[Holding, ...]
    ) -> Narration:
        verb = "is" if len(blockers) == 1 else "are"
        return Narration(
            ACTOR,
            "room_wait",
            f"waiting for room: {describe_all(blockers)} {verb} busy; {what} needs "
            f"{human_bytes(plan.need)} on {device_id}, {human_bytes(plan.free)} free",
        )

    def _no_room(
        self, what: str, device_id: str, plan: RoomPlan, blockers: tuple[Holding, ...], why: str
    ) -> DeviceTooSmall:
        return DeviceTooSmall(
            f"no room for {what} on {device_id} of hive {self.hive} ({why}): it needs "
            f"{human_bytes(plan.need)}, {human_bytes(plan.free)} free; still busy: "
            f"{describe_all(blockers)}",
            device=device_id,
        )

    def _never(self, what: str, device_id: str, plan: RoomPlan) -> DeviceTooSmall:
        limit = self.cpu_memory_limit if device_id == "cpu" else None
        why = f" (its --cpu-memory-limit is {human_bytes(limit)})" if limit is not None else ""
        pinned = ""
        if plan.pinned:
            held = human_bytes(sum(h.held for h in plan.pinned))
            pinned = f"; pinned workers (keep-alive -1) hold {held}: {describe_all(plan.pinned)}"
        return DeviceTooSmall(
            f"{what} needs at least {human_bytes(plan.need)} on {device_id}, but hive "
            f"{self.hive} can never have more than {human_bytes(plan.most)} free there{why}"
            f"{pinned}",
            device=device_id,
            never=True,
        )
