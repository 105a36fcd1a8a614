"""A hive: one machine's devices, model catalog and the workers it started.

It registers with the queen, then heartbeats: every interval it tells the queen it is alive
and what it runs. Workers heartbeat to it the same way; a worker that falls silent is
stopped, and one idle for longer than its keep-alive is stopped to free memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from rbee_core.addresses import is_unspecified, with_host
from rbee_core.backends import Backend, Footprint
from rbee_core.errors import DeviceTooSmall, InvalidRequest, RbeeError, UnknownWorker
from rbee_core.kv_cache import kv_cache_size
from rbee_core.messages import (
    HiveCapabilities,
    HiveHeartbeat,
    HiveRegistration,
    WorkerHeartbeat,
    WorkerInfo,
)
from rbee_core.models import LocalModel
from rbee_core.narration import Narration
from rbee_core.units import human_bytes
from rbee_hive.address import local_address_towards
from rbee_hive.devices import Device, available_memory, detect_devices
from rbee_hive.store import ModelStore
from rbee_hive.workers import Emit, WorkerProcess, spawn_worker
from rbee_http.auth import auth_headers

__all__ = ["DeviceTooSmall", "Hive", "Room"]

log = logging.getLogger("rbee.hive")

# For a backend that cannot say what its workers hold (no ``footprint``): a guess from the
# file size.
MEMORY_FACTOR = {"gguf": 4.5, "safetensors": 1.2}
# A worker's KV cache is cut down to fit a tight device, but not below this many tokens.
MIN_KV_TOKENS = 2048


@dataclass(frozen=True, slots=True)
class Room:
    """A worker that fits: what it will hold, and the KV cache size to start it with when
    the device could not take the backend's default (``None``: the default)."""

    need: int
    kv_tokens: int | None
    message: str


class Hive:
    def __init__(
        self,
        name: str,
        store: ModelStore,
        *,
        queen_url: str | None = None,
        url: str = "",
        heartbeat: float = 2.0,
        keep_alive: float = 300.0,
        start_timeout: float = 600.0,
        worker_host: str = "127.0.0.1",
        cpu_memory_limit: int | None = None,
        advertise_url: str | None = None,
        on_joined: Callable[[str | None], None] | None = None,
    ) -> None:
        self.name = name
        # Where this machine's own processes (its workers) reach the hive: a wildcard bind
        # answers on loopback too.
        self.local_url = with_host(url, "127.0.0.1") if is_unspecified(worker_host) else url
        # Where the queen reaches it; settled when it registers (see ``_advertised_url``).
        self.url = advertise_url or self.local_url
        self.advertise_url = advertise_url
        self.queen_url = queen_url
        # Told once how joining the queen went: None when it joined, else why it did not.
        self.on_joined = on_joined
        self.store = store
        self.devices: list[Device] = detect_devices()
        self.cpu_memory_limit = cpu_memory_limit
        self.workers: dict[str, WorkerProcess] = {}
        self.heartbeat = heartbeat
        self.keep_alive = keep_alive
        self.start_timeout = start_timeout
        self.worker_host = worker_host  # workers listen where the hive does: the queen calls them
        self._starting: dict[tuple[str, str, str], asyncio.Task[WorkerProcess]] = {}
        self._reserving: dict[tuple[str, str, str], int] = {}  # bytes of workers starting
        self._loops: list[asyncio.Task[None]] = []
        self.http = httpx.AsyncClient(timeout=5.0, headers=auth_headers())

    # -- what the hive is ---------------------------------------------------------------

    def worker_list(self) -> list[WorkerInfo]:
        self._prune()
        return [w.info(self.name) for w in self.workers.values()]

    def capabilities(self, backends: dict[str, list[str]]) -> HiveCapabilities:
        return HiveCapabilities(
            name=self.name,
            url=self.url,
            devices=[self._capped(d) for d in self.devices],
            backends=backends,
            models=[e.name for e in self.store.entries()],
            workers=self.worker_list(),
        )

    # -- workers ------------------------------------------------------------------------

    def _prune(self) -> None:
        for worker_id in [w.id for w in self.workers.values() if not w.alive]:
            del self.workers[worker_id]

    def device(self, device_id: str) -> Device:
        for d in self.devices:
            if d.id == device_id:
                return self._capped(d)
        known = ", ".join(d.id for d in self.devices)
        raise InvalidRequest(
            f"hive {self.name} has no device {device_id!r}; its devices: {known}", "device"
        )

    def _capped(self, device: Device) -> Device:
        """The CPU as workers may use it: less what the workers here will grow to (their
        KV caches fill as jobs run) and what starting workers will take, within
        ``--cpu-memory-limit``."""
        if device.id != "cpu":
            return device
        workers = [w for w in self.workers.values() if w.device == "cpu"]
        starting = sum(n for (_, d, _), n in self._reserving.items() if d == "cpu")
        ahead = starting + sum(max(0, w.reserved - (w.memory() or 0)) for w in workers)
        free = max(0, (available_memory() or device.free_memory) - ahead)
        if self.cpu_memory_limit is None:
            return Device(device.id, device.name, device.total_memory, free, device.cores)
        used = starting + sum(max(w.memory() or 0, w.reserved) for w in workers)
        free = max(0, min(free, self.cpu_memory_limit - used))
        return Device(device.id, device.name, self.cpu_memory_limit, free, device.cores)

    def check_room(self, model: LocalModel, device: Device, backend: Backend) -> Room:
        """Raise ``DeviceTooSmall`` unless a worker of ``backend`` fits on ``device``: its
        weights, runtime and KV cache. A cache that does not fit is cut down to what does
        (not below ``MIN_KV_TOKENS``) unless ``RBEE_KV_CACHE`` set its size."""
        free = device.free_memory
        estimate = getattr(backend, "footprint", None)
        if estimate is None:
            size = model.path.stat().st_size if model.path.is_file() else 0
            need = int(size * MEMORY_FACTOR.get(model.format, 1.5))
            if need > free:
                raise self._too_small(model, device, backend, f"about {human_bytes(need)}")
            return Room(need, None, self._fits(model, device, backend, human_bytes(need)))
        fp: Footprint = estimate(model, device.id)
        parts = (
            f"{human_bytes(fp.total)} (weights {human_bytes(fp.weights)}, runtime "
            f"{human_bytes(fp.runtime)}, KV cache {human_bytes(fp.kv_per_token * fp.kv_tokens)}"
            f" for {fp.kv_tokens:,} tokens)"
        )
        if fp.total <= free:
            return Room(fp.total, None, self._fits(model, device, backend, parts))
        fitting = (free - fp.weights - fp.runtime) // max(1, fp.kv_per_token)
        if kv_cache_size(os.environ) is not None or fitting < MIN_KV_TOKENS:
            raise self._too_small(model, device, backend, parts)
        cut = fp.with_kv_tokens(fitting)
        return Room(
            cut.total,
            fitting,
            self._fits(model, device, backend, human_bytes(cut.total))
            + f", its KV cache cut to {fitting:,} tokens to fit (the default needs {parts})",
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
            f"{self.name} has only {human_bytes(device.free_memory)} free there",
            device=device.id,
        )

    async def start_worker(
        self,
        model: LocalModel,
        device: Device,
        backend: Backend,
        emit: Emit,
        keep_alive: float | None = None,
    ) -> WorkerProcess:
        """A new worker of ``backend`` for ``model`` on ``device``, once there is room for it;
        concurrent asks share one start."""
        key = (model.name, device.id, backend.name)
        task = self._starting.get(key)
        if task is None:
            room = self.check_room(model, device, backend)
            emit(Narration("rbee-hive", "room", room.message))
            emit(
                Narration(
                    "rbee-hive",
                    "worker_spawn",
                    f"waking up the worker for {model.name} on {device.id}",
                )
            )
            task = asyncio.create_task(
                spawn_worker(
                    model,
                    backend.name,
                    device.id,
                    emit,
                    self.start_timeout,
                    hive_url=self.local_url,
                    heartbeat=self.heartbeat,
                    host=self.worker_host,
                    advertise_host=urlsplit(self.url).hostname,
                    kv_tokens=room.kv_tokens,
                    reserved=room.need,
                )
            )
            self._starting[key] = task
            self._reserving[key] = room.need

            def started(_: object) -> None:
                self._starting.pop(key, None)
                self._reserving.pop(key, None)

            task.add_done_callback(started)
        worker = await asyncio.shield(task)
        worker.keep_alive = keep_alive if keep_alive is not None else self.keep_alive
        self.workers[worker.id] = worker
        return worker

    def worker_heartbeat(self, worker_id: str, beat: WorkerHeartbeat) -> None:
        worker = self.workers.get(worker_id)
        if worker is None:
            raise UnknownWorker(worker_id, f"hive {self.name}")
        worker.heard(beat)

    async def stop_worker(self, worker_id: str) -> WorkerProcess:
        worker = self.workers.pop(worker_id, None)
        if worker is None:
            raise UnknownWorker(worker_id, f"hive {self.name}")
        await worker.stop()
        return worker

    # -- background loops ---------------------------------------------------------------

    def start(self) -> None:
        self._loops = [asyncio.create_task(self._tend_workers())]
        if self.queen_url:
            self._loops.append(asyncio.create_task(self._heartbeat_queen()))

    async def _tend_workers(self) -> None:
        """Stop workers that fell silent (hung) or stayed idle past their keep-alive."""
        while True:
            await asyncio.sleep(self.heartbeat)
            now = time.time()
            for worker in list(self.workers.values()):
                reason = None
                if now - worker.last_heartbeat > 3 * self.heartbeat + 5:
                    reason = f"no heartbeat for {now - worker.last_heartbeat:.0f} s"
                elif worker.idle_for(now) > worker.keep_alive:
                    idle = worker.idle_for(now)
                    reason = f"idle for {idle:.0f} s (keep-alive {worker.keep_alive:g} s)"
                if reason:
                    log.info("stopping worker %s: %s", worker.describe(), reason)
                    self.workers.pop(worker.id, None)
                    await worker.stop()

    async def _advertised_url(self) -> str:
        if self.advertise_url or not is_unspecified(self.worker_host) or not self.queen_url:
            return self.url
        try:
            host = await asyncio.to_thread(local_address_towards, self.queen_url)
        except OSError as exc:
            raise RbeeError(f"cannot reach the queen at {self.queen_url}: {exc}") from exc
        return with_host(self.local_url, host)

    def _joined(self, error: str | None) -> None:
        if self.on_joined is not None:
            report, self.on_joined = self.on_joined, None
            report(error)

    async def _heartbeat_queen(self) -> None:
        registered = False
        while True:
            try:
                if not registered:
                    self.url = await self._advertised_url()
                    await self._post(
                        "/hives/register", HiveRegistration(self.name, self.url).to_json()
                    )
                    log.info(
                        "joined the queen at %s as %s (%s)", self.queen_url, self.name, self.url
                    )
                    registered = True
                    self._joined(None)
                beat = HiveHeartbeat(
                    self.name, self.url, self.worker_list(), [e.name for e in self.store.entries()]
                )
                answer = await self.http.post(
                    f"{self.queen_url}/hives/heartbeat", json=beat.to_json()
                )
                if answer.status_code == 404:  # the queen restarted and forgot us
                    registered = False
                    continue
            except (httpx.HTTPError, RbeeError) as exc:
                why = exc.message if isinstance(exc, RbeeError) else f"{exc!r}"
                log.warning("heartbeat to the queen at %s failed: %s", self.queen_url, why)
                self._joined(why)
                registered = False
            await asyncio.sleep(self.heartbeat)

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        try:
            answer = await self.http.post(f"{self.queen_url}{path}", json=body)
        except httpx.HTTPError as exc:
            raise RbeeError(f"cannot reach the queen at {self.queen_url}: {exc!r}") from exc
        if answer.status_code >= 400:
            try:
                said: Any = answer.json()
            except ValueError:
                said = None
            if not isinstance(said, dict):
                said = {"error": {"message": f"HTTP {answer.status_code}"}}
            refusal = RbeeError.from_dict(said, status=answer.status_code)  # its code kept
            refusal.message = f"the queen at {self.queen_url} refused {path}: {refusal.message}"
            raise refusal

    async def stop_all(self) -> None:
        """Stop every worker this hive started (cascading shutdown)."""
        for task in [*self._loops, *self._starting.values()]:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await asyncio.gather(*(w.stop() for w in self.workers.values()), return_exceptions=True)
        self.workers.clear()
        with contextlib.suppress(Exception):
            await self.http.aclose()
        self.store.close()
