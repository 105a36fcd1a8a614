"""A hive: one machine's devices, model catalog and the workers it started.

It registers with the queen, then heartbeats: every interval it tells the queen it is alive
and what it runs, with the secret the queen issued it at registration
(rbee_core.peer_identity). Workers heartbeat to it the same way, each with the token it was
started with; a worker that falls silent is stopped, and one idle for longer than its
keep-alive is stopped to free memory (a pinned one, keep-alive -1, never). Whether a worker
fits, and making room for one a job needs, is its ``RoomCheck`` (room.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from rbee_core.addresses import is_unspecified, with_host
from rbee_core.backends import Backend, SplittableBackend
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import InvalidRequest, RbeeError, UnknownWorker, WorkerIdentity
from rbee_core.messages import (
    HiveCapabilities,
    HiveHeartbeat,
    HiveRegistration,
    PartInfo,
    WorkerHeartbeat,
    WorkerInfo,
)
from rbee_core.model_split import ModelPart, split_refusal
from rbee_core.models import LocalModel
from rbee_core.narration import Narration
from rbee_core.peer_identity import (
    HIVE_LAUNCH_TOKEN_HEADER,
    HIVE_TOKEN_HEADER,
    MAX_CHALLENGE,
    new_secret,
    proof,
    same_secret,
)
from rbee_core.plugins import backend_refusal
from rbee_hive.address import local_address_towards
from rbee_hive.devices import Device, detect_devices
from rbee_hive.parts import PartProcess, spawn_part
from rbee_hive.room import Room, RoomCheck
from rbee_hive.workers import Emit, Launch, WorkerProcess, spawn_worker
from rbee_http.auth import auth_headers
from rbee_models.store import ModelStore

__all__ = ["Hive"]

log = logging.getLogger("rbee.hive")

# How long a hive stopping on its own waits for the queen to move its jobs elsewhere.
LEAVE_PATIENCE = 150.0


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
        labels: dict[str, str] | None = None,
        launch: Launch | None = None,
        launch_token: str | None = None,
        backend: str | None = None,
        engine_options: EngineOptions | None = None,
    ) -> None:
        self.name = name
        self.backend = backend  # for a job that names none (RBEE_BACKEND); None: the best
        # Its workers inherit its environment: the backends size them with the same options.
        self.engine_options = engine_options or EngineOptions()
        # Given by the queen that started this hive (its environment): lets it take its
        # name back from another port.
        self.launch_token = launch_token
        self._nonce: str | None = None  # while registering: what it proves holding
        self._secret: str | None = None  # issued by the queen; sent with every report
        self.asked_to_stop = False  # by the queen (/shutdown): it moved the jobs if it would
        self.labels = labels or {}
        self.launch = launch  # how its workers' processes start (hookspec rbee_worker_launcher)
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
        # The room check reads and unloads these: changed in place, never replaced.
        self.workers: dict[str, WorkerProcess] = {}
        self.parts: dict[str, PartProcess] = {}  # of split models, for workers elsewhere
        self.heartbeat = heartbeat
        self.keep_alive = keep_alive
        self.start_timeout = start_timeout
        self.worker_host = worker_host  # workers listen where the hive does: the queen calls them
        self._loops: list[asyncio.Task[None]] = []
        self.http = httpx.AsyncClient(timeout=5.0, headers=auth_headers())
        self.room = RoomCheck(
            name,
            detect_devices(),
            self.workers,
            self.http,
            cpu_memory_limit,
            fixed_kv_cache=self.engine_options.kv_cache is not None,
            parts=self.parts,
        )

    # -- what the hive is ---------------------------------------------------------------

    def worker_list(self) -> list[WorkerInfo]:
        self.prune()
        return [w.info(self.name) for w in self.workers.values()]

    def capabilities(self, backends: dict[str, Backend]) -> HiveCapabilities:
        """What this hive has; ``backends``: the installed ones by name."""
        devices = self.room.devices()
        return HiveCapabilities(
            name=self.name,
            url=self.url,
            devices=devices,
            backends={name: list(b.formats) for name, b in backends.items()},
            backend_devices={
                name: [d.id for d in devices if backend_refusal(b, d.id) is None]
                for name, b in backends.items()
            },
            models=[e.name for e in self.store.entries()],
            workers=self.worker_list(),
            labels=self.labels,
        )

    # -- workers ------------------------------------------------------------------------

    def prune(self) -> None:
        """Forget workers and parts whose process exited."""
        for worker_id in [w.id for w in self.workers.values() if not w.alive]:
            del self.workers[worker_id]
        for part_id in [p.id for p in self.parts.values() if not p.alive]:
            log.info("part %s ended", self.parts.pop(part_id).describe())

    def part_list(self) -> list[dict[str, Any]]:
        self.prune()
        return [p.to_json(self.name) for p in self.parts.values()]

    def part_infos(self) -> list[PartInfo]:
        self.prune()
        return [p.info() for p in self.parts.values()]

    async def start_part(
        self, model: str, layers: int, need: int, for_hive: str, backend: SplittableBackend
    ) -> PartProcess:
        """A part of a split model for a worker on ``for_hive``: ``layers`` of ``model``'s
        layers, ``need`` bytes with their KV cache and the process (``DeviceTooSmall``
        when this machine's RAM has not that free)."""
        self.prune()
        self.room.fit_part(model, need)
        part = await spawn_part(
            backend.part_command(self.worker_host),
            model=model,
            layers=layers,
            for_hive=for_hive,
            advertise_host=urlsplit(self.url).hostname or "127.0.0.1",
            reserved=need,
        )
        self.parts[part.id] = part
        self.room.changed()
        return part

    async def stop_part(self, part_id: str) -> PartProcess:
        part = self.parts.pop(part_id, None)
        if part is None:
            raise UnknownWorker(part_id, f"hive {self.name}")
        await part.stop()
        self.room.changed()
        return part

    def device(self, device_id: str) -> Device:
        """The device as workers may use it (``RoomCheck.device``); ``InvalidRequest`` for
        one this machine does not have."""
        return self.room.device(device_id)

    async def start_worker(
        self,
        model: LocalModel,
        device: Device,
        backend: Backend,
        emit: Emit,
        keep_alive: float | None = None,
        *,
        make_room: bool = False,
        room_wait: float | None = None,
        left: Callable[[], bool] = lambda: False,
        parts: tuple[ModelPart, ...] = (),
    ) -> WorkerProcess:
        """A new worker of ``backend`` for ``model`` on ``device``, once there is room for it;
        concurrent asks share one start. With ``make_room`` (a job asks for it), idle
        workers are unloaded for it and busy ones waited for, up to ``room_wait`` seconds
        (default: the start timeout) or until the asker ``left``; else it fits now or
        ``DeviceTooSmall``. With ``parts`` (a split model) it holds the layers they do not,
        and the room check counts only those."""

        def start(room: Room) -> asyncio.Task[WorkerProcess]:
            return self._spawn(model, device, backend, emit, room, keep_alive, parts)

        share = 1.0
        if parts:
            if not isinstance(backend, SplittableBackend):
                raise InvalidRequest(split_refusal(backend.name), field="parts")
            total = backend.layers(model)
            share = max(0, total - sum(p.layers for p in parts)) / max(1, total)
        if make_room:
            wait = self.start_timeout if room_wait is None else room_wait
            task = await self.room.make_room(
                model, device.id, backend, start, emit=emit, wait=wait, left=left, share=share
            )
        else:
            task = self.room.admit(model, device.id, backend, start, share)
        worker = await asyncio.shield(task)
        worker.keep_alive = keep_alive if keep_alive is not None else self.keep_alive
        self.workers[worker.id] = worker
        return worker

    def _spawn(
        self,
        model: LocalModel,
        device: Device,
        backend: Backend,
        emit: Emit,
        room: Room,
        keep_alive: float | None,
        parts: tuple[ModelPart, ...] = (),
    ) -> asyncio.Task[WorkerProcess]:
        """Start the worker that ``room`` made room for (``RoomCheck`` reserves it until
        the worker runs)."""
        emit(Narration("rbee-hive", "room", room.message))
        emit(
            Narration(
                "rbee-hive",
                "worker_spawn",
                f"waking up the worker for {model.name} on {device.id}",
            )
        )

        async def run() -> WorkerProcess:
            worker = await spawn_worker(
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
                launch=self.launch,
                parts=parts,
            )
            # Counted as a worker in the same step as its reservation ends: never neither.
            worker.keep_alive = keep_alive if keep_alive is not None else self.keep_alive
            self.workers[worker.id] = worker
            return worker

        return asyncio.create_task(run())

    def identity(self, challenge: str) -> dict[str, str | None]:
        """``GET /identity``: its name, and the proof that it holds the nonce of the
        registration under way (rbee_core.peer_identity); no proof when none is."""
        if not challenge or len(challenge) > MAX_CHALLENGE:
            raise InvalidRequest(
                f"challenge must be 1 to {MAX_CHALLENGE} characters", field="challenge"
            )
        nonce = self._nonce
        return {"name": self.name, "proof": proof(nonce, self.name, challenge) if nonce else None}

    def worker_heartbeat(self, worker_id: str, beat: WorkerHeartbeat, token: str | None) -> None:
        worker = self.workers.get(worker_id)
        if worker is None:
            raise UnknownWorker(worker_id, f"hive {self.name}")
        if not same_secret(token, worker.token):
            raise WorkerIdentity(
                f"refused a heartbeat for worker {worker_id} without the token hive "
                f"{self.name} gave it at its start",
                worker=worker_id,
            )
        was_busy = worker.busy
        worker.heard(beat)
        if was_busy and not worker.busy:
            self.room.changed()

    async def stop_worker(self, worker_id: str) -> WorkerProcess:
        worker = self.workers.pop(worker_id, None)
        if worker is None:
            raise UnknownWorker(worker_id, f"hive {self.name}")
        await worker.stop()
        self.room.changed()
        return worker

    # -- background loops ---------------------------------------------------------------

    def start(self) -> None:
        self._loops = [asyncio.create_task(self._tend_workers())]
        if self.queen_url:
            self._loops.append(asyncio.create_task(self._heartbeat_queen()))

    async def _tend_workers(self) -> None:
        """Stop workers that fell silent (hung) or stayed idle past their keep-alive (not
        pinned ones). An idle one is asked to retire first: it refuses if a job reached it
        since its last heartbeat, and keeps serving."""
        while True:
            await asyncio.sleep(self.heartbeat)
            now = time.time()
            for worker in list(self.workers.values()):
                reason = None
                if now - worker.last_heartbeat > 3 * self.heartbeat + 5:
                    reason = f"no heartbeat for {now - worker.last_heartbeat:.0f} s"
                elif not worker.pinned and worker.idle_for(now) > worker.keep_alive:
                    refused = await worker.retire(self.http, worker.keep_alive)
                    if refused is not None:
                        log.info("worker %s stays: %s", worker.describe(), refused)
                        continue
                    idle = worker.idle_for(now)
                    reason = f"idle for {idle:.0f} s (keep-alive {worker.keep_alive:g} s)"
                if reason and self.workers.get(worker.id) is worker:
                    log.info("stopping worker %s: %s", worker.describe(), reason)
                    self.workers.pop(worker.id, None)
                    await worker.stop()
                    self.room.changed()

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

    async def _register(self) -> None:
        """Join the queen: it calls back ``GET /identity`` while this request is under way,
        and answers the secret this hive's reports carry."""
        self.url = await self._advertised_url()
        self._nonce = new_secret()
        headers = {HIVE_LAUNCH_TOKEN_HEADER: self.launch_token} if self.launch_token else {}
        try:
            answer = await self._post(
                "/hives/register",
                HiveRegistration(self.name, self.url, self._nonce).to_json(),
                headers,
            )
        finally:
            self._nonce = None
        secret = answer.get("secret") if isinstance(answer, dict) else None
        if not isinstance(secret, str) or not secret:
            raise RbeeError(f"the queen at {self.queen_url} answered no secret to /hives/register")
        self._secret = secret
        log.info("joined the queen at %s as %s (%s)", self.queen_url, self.name, self.url)

    async def _heartbeat_queen(self) -> None:
        registered = False
        while True:
            try:
                if not registered:
                    await self._register()
                    registered = True
                    self._joined(None)
                beat = HiveHeartbeat(
                    self.name,
                    self.url,
                    self.worker_list(),
                    [e.name for e in self.store.entries()],
                    self.part_infos(),
                )
                answer = await self.http.post(
                    f"{self.queen_url}/hives/heartbeat",
                    json=beat.to_json(),
                    headers={HIVE_TOKEN_HEADER: self._secret or ""},
                )
                if answer.status_code == 404:  # the queen restarted and forgot us
                    registered = False
                    continue
                if answer.status_code == 403:  # another registration replaced our secret
                    registered = False
                if answer.status_code != 200:
                    log.warning(
                        "the queen at %s refused a heartbeat (HTTP %s): %s",
                        self.queen_url,
                        answer.status_code,
                        answer.text[:500],
                    )
            except (httpx.HTTPError, RbeeError) as exc:
                why = exc.message if isinstance(exc, RbeeError) else f"{exc!r}"
                log.warning("heartbeat to the queen at %s failed: %s", self.queen_url, why)
                self._joined(why)
                registered = False
            await asyncio.sleep(self.heartbeat)

    async def _post(
        self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Any:
        try:
            answer = await self.http.post(f"{self.queen_url}{path}", json=body, headers=headers)
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
        try:
            return answer.json()
        except ValueError:
            return None

    async def leave(self) -> None:
        """Stopping on its own (SIGTERM, not the queen's ``/shutdown``): ask the queen to
        move the jobs running on this hive's workers to other hives first, so they go on
        without an error, and wait (a while) until it has."""
        if self.queen_url is None or self._secret is None or self.asked_to_stop:
            return
        log.info("stopping: asking the queen at %s to move this hive's jobs", self.queen_url)
        try:
            await asyncio.wait_for(
                self._post(
                    f"/hives/{self.name}/drain", {}, headers={HIVE_TOKEN_HEADER: self._secret}
                ),
                LEAVE_PATIENCE,
            )
        except (RbeeError, TimeoutError) as exc:
            why = exc.message if isinstance(exc, RbeeError) else "no answer in time"
            log.warning("the queen did not move this hive's jobs (%s); stopping anyway", why)

    async def stop_all(self) -> None:
        """Stop every worker this hive started (cascading shutdown)."""
        for task in [*self._loops, *self.room.starts()]:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        stopping = [w.stop() for w in self.workers.values()]
        stopping += [p.stop() for p in self.parts.values()]
        await asyncio.gather(*stopping, return_exceptions=True)
        self.workers.clear()
        self.parts.clear()
        with contextlib.suppress(Exception):
            await self.http.aclose()
        self.store.close()
