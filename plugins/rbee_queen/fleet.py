"""The queen's fleet: the hives that joined, the workers they run, and the hive of this
machine, which the queen starts itself when none has joined.

It learns what a hive has (its capabilities) before calling it ready, notices hives that
fall silent, and asks a hive for a worker. Jobs are not its business (orchestrator.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from rbee_core.addresses import is_unspecified
from rbee_core.errors import HiveError, HiveIdentity, HiveUnreachable, InvalidRequest, RbeeError
from rbee_core.messages import HiveCapabilities, HiveState, WorkerInfo
from rbee_core.model_split import ModelPart
from rbee_core.narration import Narration
from rbee_core.peer_identity import new_secret, proof, same_secret
from rbee_core.prefix_index import PrefixIndex
from rbee_core.slots import Slots
from rbee_http.auth import auth_headers
from rbee_queen import hive_client
from rbee_queen.hives import HiveRecord, HiveRegistry
from rbee_queen.launcher import spawn_local_hive

__all__ = ["LOCAL_HIVE", "Fleet", "WorkerRef"]

LOCAL_HIVE = "localhost"
log = logging.getLogger("rbee.queen")

Say = Callable[[str, str], None]
"""Narration for a job that waits on the fleet: (action, message)."""


@dataclass(eq=False)
class WorkerRef:
    """A worker as the queen sees it: where it is, and the jobs running on it. It runs
    ``slots`` jobs at once (its batch size); the queen sends it no more (``queue.take``),
    the rest wait in their model's line (waiting.py)."""

    id: str
    hive: str
    model: str
    device: str
    url: str
    slots: int = 1
    backend: str = ""
    quantization: str = ""
    jobs_served: int = 0
    parts: tuple[tuple[str, int], ...] = ()  # a split model: (hive, layers) held elsewhere
    queue: Slots = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.queue = Slots(self.slots)

    @classmethod
    def from_info(cls, hive: str, info: WorkerInfo) -> WorkerRef:
        """From a worker as a hive lists it."""
        return cls(
            info.id,
            hive,
            info.model,
            info.device,
            info.url,
            info.slots,
            info.backend,
            info.quantization,
            parts=info.parts,
        )

    def describe(self) -> str:
        engine = " ".join(filter(None, (self.backend, self.quantization)))
        split = "".join(f", {n} layers on hive {h}" for h, n in self.parts)
        return (
            f"{self.id} ({self.model} on {self.device} of hive {self.hive}{split}, {engine or '?'})"
        )


@dataclass(frozen=True, slots=True)
class SilentHive:
    """A hive the fleet has just marked unreachable, and the workers lost with it."""

    record: HiveRecord
    why: str
    lost: dict[str, WorkerRef]


class Fleet:
    def __init__(self, url: str, heartbeat: float, hive_timeout: float | None) -> None:
        self.url = url  # the queen's, which the hive it starts dials
        self.heartbeat = heartbeat
        self.hives = HiveRegistry(hive_timeout or 3 * heartbeat + 1)
        self.workers: dict[str, WorkerRef] = {}
        # What each worker likely holds cached, for placement by prefix (forgotten with it).
        self.index = PrefixIndex()
        self._processes: dict[str, asyncio.subprocess.Process] = {}  # hives started here
        # The launch token of the hive the queen last started under each name (its local
        # hive, a Ray node's): that hive may take its name back from another URL.
        self._launch_tokens: dict[str, str] = {}
        self._local_lock = asyncio.Lock()
        # Workers dropped while their hive may still list them (its heartbeat is older than
        # the loss): worker id -> hive. A stale list must not bring a dead worker back.
        self._dropped: dict[str, str] = {}
        self._stopping: set[asyncio.Task[None]] = set()  # split workers that lost a part
        # Where hives come from when the queen must not start its own (a plugin that keeps
        # hives on a cluster's nodes says so, e.g. "the Ray cluster at 10.0.0.1:6379").
        self.hive_source: str | None = None
        self.hive_source_problem: str | None = None  # why no hive comes from it, if known
        # Streams can be idle for minutes while a worker loads: no read timeout.
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, read=None), headers=auth_headers()
        )

    # -- this machine's hive ------------------------------------------------------------

    async def local_hive(self, say: Say | None = None) -> HiveRecord:
        """The hive of this machine: started on first use if none has joined, as the happy
        flow narrates (through ``say``)."""

        def tell(action: str, message: str) -> None:
            if say is not None:
                say(action, message)

        if self.hive_source is not None:
            return await self._await_any_hive(tell)
        async with self._local_lock:
            record = self.hives.find(LOCAL_HIVE)
            if record is not None and record.state != HiveState.UNREACHABLE:
                await self._await_ready(record)
                return record
            if not len(self.hives):
                tell("hive_none", "No hives found.")
            tell("hive_add", "Adding local pc to hive catalog.")
            tell("hive_wake", "waking up the bee hive at localhost")
            token = self.launch_token(LOCAL_HIVE)
            process = await spawn_local_hive(self.url, LOCAL_HIVE, self.heartbeat, token)
            self._processes[LOCAL_HIVE] = process
            try:
                record = await self._wait_registered(LOCAL_HIVE, process)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                raise
            record.started_here = True
            tell(
                "hive_heartbeat",
                "first heartbeat from a bee hive is received from localhost. "
                "checking its capabilities...",
            )
            tell(
                "hive_detect",
                "unknown capabilities of beehive localhost. asking the beehive to detect devices",
            )
            await self.learn(record)
            devices = ", ".join(d.describe() for d in record.devices)
            tell("hive_ready", f"the bee hive at localhost has: {devices}")
            return record

    async def _await_any_hive(self, tell: Callable[[str, str], None]) -> HiveRecord:
        """A ready hive of ``hive_source``, waiting for one to join (up to a minute)."""
        ready = self.hives.ready()
        if not ready:
            tell("hive_none", f"No hive is ready yet; hives come from {self.hive_source}")
        deadline = time.monotonic() + 60.0
        while not ready:
            if time.monotonic() > deadline:
                why = f": {self.hive_source_problem}" if self.hive_source_problem else ""
                raise HiveUnreachable(f"no hive joined from {self.hive_source} within 60 s{why}")
            await asyncio.sleep(0.2)
            ready = self.hives.ready()
        return ready[0]

    async def _wait_registered(self, name: str, process: asyncio.subprocess.Process) -> HiveRecord:
        timeout = 60.0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise HiveUnreachable(
                    f"the hive {name} exited (code {process.returncode}) before its first "
                    "heartbeat; see its log in the state dir"
                )
            record = self.hives.find(name)
            if record is not None and record.first_heartbeat.is_set():
                return record
            await asyncio.sleep(0.05)
        raise HiveUnreachable(f"no heartbeat from hive {name} in {timeout:.0f} s")

    async def _await_ready(self, record: HiveRecord) -> None:
        if not record.first_heartbeat.is_set():
            await asyncio.wait_for(record.first_heartbeat.wait(), 60)
        if not record.devices:
            await self.learn(record)

    # -- hives joining ------------------------------------------------------------------

    def launch_token(self, name: str) -> str:
        """A new launch token for a hive the queen starts under ``name`` (in its
        environment, ``HIVE_LAUNCH_TOKEN_ENV``); the one before stops counting."""
        token = self._launch_tokens[name] = new_secret()
        return token

    def launched(self, name: str, token: str | None) -> bool:
        """Whether ``token`` is the launch token of the hive last started as ``name``."""
        return same_secret(token, self._launch_tokens.get(name))

    async def check_not_queen(self, url: str) -> None:
        """Refuse the queen's own URL as a hive's: the queen would send itself jobs. It is
        the queen's when it has the queen's port and a host that reaches the queen: one of
        the queen's addresses, or for a queen bound to every address, any of this
        machine's."""
        own = urlsplit(self.url)
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return  # not a URL the queen could dial: the identity check says so
        if own.port is None or port != own.port or not parts.hostname or not own.hostname:
            return
        hive_addresses = await _addresses(parts.hostname, port)
        if is_unspecified(own.hostname):
            mine = any(_is_local(a) for a in hive_addresses)
        else:
            mine = bool(hive_addresses & await _addresses(own.hostname, port))
        if mine:
            raise InvalidRequest(
                f"url {url!r} is the queen's own address ({self.url}); a hive must give "
                "the URL of its own server",
                field="url",
            )

    async def check_identity(self, name: str, url: str, nonce: str) -> None:
        """Refuse a hive whose URL does not answer as that hive, holding the nonce it
        registered with: a job for it would fail, or run on whatever else answers there
        (another hive, the queen, a server that is no hive at all)."""
        challenge = secrets.token_urlsafe(16)
        try:
            answer = await hive_client.call(
                self.http, "GET", f"{url}/identity", params={"challenge": challenge}, timeout=5.0
            )
        except HiveUnreachable as exc:
            why = exc.message.removeprefix(f"cannot reach the hive at {url}/identity: ")
            raise HiveUnreachable(
                f"the queen cannot reach hive {name} at {url}: {why}. Start the hive with "
                "--advertise-url set to an address the queen can reach",
                hive=name,
            ) from None
        except RbeeError as exc:
            raise HiveIdentity(
                f"the queen cannot take {url} as hive {name}: it answered GET /identity "
                f"with {exc.code}: {exc.message}",
                hive=name,
            ) from None
        said = answer.get("name") if isinstance(answer, dict) else None
        if said != name:
            who = f"hive {said!r}" if isinstance(said, str) else "no hive"
            raise HiveIdentity(
                f"the queen cannot take {url} as hive {name}: {who} answers there", hive=name
            )
        given = answer.get("proof")
        if not (isinstance(given, str) and same_secret(given, proof(nonce, name, challenge))):
            raise HiveIdentity(
                f"the queen cannot take {url} as hive {name}: the hive there did not prove "
                "it is the one registering (its answer to the queen's challenge does not "
                "match the nonce of this registration, or it is not registering now)",
                hive=name,
            )

    async def learn_later(self, record: HiveRecord) -> None:
        """``learn`` a hive that joined on its own, retrying with backoff while it does not
        answer; each failure is logged and kept on its record for ``hive list``."""
        delay = self.heartbeat
        while self.hives.find(record.name) is record and not record.devices:
            try:
                await self.learn(record)
                record.problem = None
                return
            except RbeeError as exc:
                record.problem = exc.message
                log.warning("hive %s: %s; asking again in %.0f s", record.name, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def learn(self, record: HiveRecord) -> None:
        """Ask a hive for its capabilities; it is ready once the queen knows them."""
        answer = await hive_client.call(self.http, "GET", f"{record.url}/capabilities")
        try:
            caps = HiveCapabilities.from_json(answer if isinstance(answer, dict) else {})
        except InvalidRequest as exc:  # the hive's fault, not the asker's
            raise HiveError(
                f"hive {record.name} reported bad capabilities: {exc.message}"
            ) from None
        record.devices = caps.devices
        record.backends = caps.backends
        record.backend_devices = caps.backend_devices
        record.models = caps.models
        record.workers = caps.workers
        record.labels = caps.labels
        record.state = HiveState.READY

    # -- workers ------------------------------------------------------------------------

    def drop_worker(self, worker_id: str, *, dead: bool = False) -> None:
        """A worker went (stopped, lost, unloaded): forget it, and what it had cached.
        ``dead``: its connection broke, so it stays forgotten while its hive still lists it
        (until the hive notices too), however fresh that list looks."""
        worker = self.workers.pop(worker_id, None)
        if worker is not None and dead:
            self._dropped[worker_id] = worker.hive
        self.index.forget(worker_id)

    def forget_workers(self, hive: str) -> list[WorkerRef]:
        """The workers on ``hive``, and those whose model is split onto it (lost with it),
        forgotten."""
        gone = [
            w for w in self.workers.values() if w.hive == hive or any(h == hive for h, _ in w.parts)
        ]
        for worker in gone:
            # One whose own hive lives on stays listed there until it is stopped.
            self.drop_worker(worker.id, dead=worker.hive != hive)
            if worker.hive != hive:  # its own hive lives on: it must not serve again
                task = asyncio.create_task(self._stop_worker(worker))
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
        return gone

    async def _stop_worker(self, worker: WorkerRef) -> None:
        record = self.hives.find(worker.hive)
        if record is None:
            return
        with contextlib.suppress(RbeeError):
            await hive_client.call(
                self.http, "DELETE", f"{record.url}/workers/{worker.id}", timeout=10.0
            )

    def sync_workers(self, record: HiveRecord) -> None:
        """Workers the hive no longer reports (idle-stopped, crashed) leave the queen's table;
        ones it reports that the queen did not start (spawned directly) join it."""
        reported = {w.id: w for w in record.workers}
        for worker in [w for w in self.workers.values() if w.hive == record.name]:
            if worker.id not in reported and not worker.queue.load:
                self.drop_worker(worker.id)
        for worker_id, hive in list(self._dropped.items()):
            if hive == record.name and worker_id not in reported:
                del self._dropped[worker_id]  # the hive knows it went too
        for worker_id, info in reported.items():
            if worker_id not in self.workers and worker_id not in self._dropped:
                self.workers[worker_id] = WorkerRef.from_info(record.name, info)

    def adopt(self, record: HiveRecord, info: WorkerInfo) -> WorkerRef:
        """A worker ``record``'s hive has just started, in the queen's table at once, not
        after the hive's next heartbeat (which then refreshes it): until then a job would
        not see it, and a busy model would start a replica beside it."""
        # Jobs that asked at once share one start: and one WorkerRef, so that they share
        # its slots too.
        worker = self.workers.get(info.id) or WorkerRef.from_info(record.name, info)
        self.workers[worker.id] = worker
        self._dropped.pop(worker.id, None)
        record.workers = [*(w for w in record.workers if w.id != worker.id), info]
        return worker

    async def spawn_worker(
        self,
        record: HiveRecord,
        model: str,
        device: str,
        listener: Callable[[Narration], None],
        keep_alive: float | None = None,
        backend: str | None = None,
        *,
        room_wait: float | None = None,
        parts: list[ModelPart] | None = None,
    ) -> WorkerRef:
        """Ask a hive for a job's worker: it provisions the model, then makes room for it
        (unloading idle workers, waiting up to ``room_wait`` seconds for busy ones).
        ``parts``: of a split model, on other hives."""
        body: dict[str, Any] = {"model": model, "device": device, "make_room": True}
        if parts:
            body["parts"] = [p.to_json() for p in parts]
        if room_wait is not None:
            body["room_wait"] = room_wait
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        if backend is not None:
            body["backend"] = backend
        async for event, data in hive_client.stream(
            self.http, "POST", f"{record.url}/workers", body
        ):
            if event == "narration":
                listener(Narration.from_json(data))
            elif event == "end":
                return self.adopt(record, WorkerInfo.from_json(data["worker"]))
            elif event == "error":  # e.g. worker_failed, device_too_small: passed on as is
                raise RbeeError.from_dict({"error": data})
        raise HiveError(f"hive {record.name} ended the stream without a worker")

    # -- hives leaving ------------------------------------------------------------------

    def mark_silent(self) -> list[SilentHive]:
        """Mark the ready hives whose heartbeats stopped unreachable, forgetting their
        workers."""
        found = []
        for record in self.hives.silent():
            silence = time.time() - (record.last_heartbeat or record.registered_at)
            record.state = HiveState.UNREACHABLE
            why = f"hive {record.name} is unreachable: no heartbeat for {silence:.1f} s"
            log.warning(why)
            lost = {w.id: w for w in self.forget_workers(record.name)}
            found.append(SilentHive(record, why, lost))
        return found

    async def stop_hive(self, name: str) -> HiveRecord:
        """Ask a hive to stop (it stops its workers); wait for it if the queen started it."""
        record = self.hives.get(name)
        with contextlib.suppress(RbeeError):
            # An empty JSON body: every POST to a daemon must be JSON (rbee_http.auth).
            await hive_client.call(self.http, "POST", f"{record.url}/shutdown", json={})
        process = self._processes.pop(name, None)
        self._launch_tokens.pop(name, None)
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        self.forget_workers(name)
        self.hives.remove(name)
        return record

    async def close(self) -> None:
        """Stop the hives the queen started (they stop their workers); hives that joined on
        their own are left running."""
        await asyncio.gather(
            *(self.stop_hive(n) for n in list(self._processes)), return_exceptions=True
        )
        await self.http.aclose()


async def _addresses(host: str, port: int) -> set[str]:
    """The IP addresses ``host`` resolves to (none if it does not resolve within 5 s)."""
    try:
        found = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), 5.0
        )
    except (OSError, TimeoutError, UnicodeError):
        return set()
    return {str(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in found}


def _is_local(address: str) -> bool:
    """Whether ``address`` is one of this machine's: loopback, or one it can bind."""
    ip = ipaddress.ip_address(address)
    if ip.is_loopback or ip.is_unspecified:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True
