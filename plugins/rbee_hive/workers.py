"""Worker processes: spawn one, relay its start-up narration, know when it dies."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rbee_core.errors import WorkerFailed
from rbee_core.messages import WorkerHeartbeat, WorkerInfo, WorkerReady, WorkerState
from rbee_core.model_split import ModelPart
from rbee_core.models import LocalModel
from rbee_core.narration import Narration
from rbee_core.paths import logs_dir
from rbee_core.peer_identity import WORKER_PARTS_ENV, WORKER_TOKEN_ENV, new_secret
from rbee_core.private_files import open_private
from rbee_hive.child_process import ProcessHandle, log_tail, resident_memory, stop_process

__all__ = ["Launch", "ProcessHandle", "WorkerFailed", "WorkerProcess", "spawn_worker"]

log = logging.getLogger("rbee.hive")
_ids = itertools.count(1)

Emit = Callable[[Narration], None]
"""Where a worker's start-up narration goes."""


Launch = Callable[[list[str], dict[str, str], Path, str, int, Emit], Awaitable[ProcessHandle]]
"""``launch(argv, env, log_path, device, reserved, emit)`` (hookspec ``rbee_worker_launcher``)."""


async def _child(
    argv: list[str], env: dict[str, str], log_path: Path, device: str, reserved: int, emit: Emit
) -> ProcessHandle:
    """The default launcher: a child process of the hive."""
    with open_private(log_path) as stderr:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            limit=1 << 20,
            env=env,
        )


@dataclass(eq=False)
class WorkerProcess:
    """A running ``llm-worker-rbee`` this hive started."""

    id: str
    model: str
    backend: str
    device: str
    url: str
    process: ProcessHandle
    log_path: Path
    keep_alive: float = 300.0  # idle seconds before it is stopped; -1: pinned, never
    slots: int = 1  # jobs it runs at once (its batch size)
    quantization: str = ""  # how its weights are held: Q4_K_M, bf16...
    reserved: int = 0  # bytes the hive set aside for it: weights, runtime, full KV cache
    busy: bool = False
    jobs_served: int = 0
    # Given to it at its start (its environment); its heartbeats must carry it.
    token: str = field(default="", repr=False)
    parts: tuple[tuple[str, int], ...] = ()  # a split model: (hive, layers) held elsewhere
    last_heartbeat: float = field(default_factory=time.time)
    idle_since: float = field(default_factory=time.time)
    _watch: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def heard(self, beat: WorkerHeartbeat) -> None:
        """A heartbeat from the worker."""
        self.last_heartbeat = time.time()
        self.busy = beat.busy
        self.jobs_served = beat.jobs_served
        self.idle_since = beat.idle_since

    def idle_for(self, now: float) -> float:
        return 0.0 if self.busy else now - self.idle_since

    @property
    def pinned(self) -> bool:
        """Keep-alive -1: never stopped for being idle, never unloaded to make room."""
        return self.keep_alive < 0

    def held(self) -> int:
        """What it counts for on its device: its resident memory, or what the hive set
        aside for it (its KV cache full) if that is more. A GPU worker's resident memory is
        RAM, not the GPU's: there it is what it reserved."""
        if not self.device.startswith("cpu"):
            return self.reserved
        return max(self.memory() or 0, self.reserved)

    async def retire(self, http: httpx.AsyncClient, min_idle: float) -> str | None:
        """Ask the worker to stop taking jobs (rbee_worker/retire.py): None once it agreed,
        else why not. It agrees only with no job running, queued or accepted for
        ``min_idle`` seconds, so that no job the queen just sent it is lost."""
        try:
            answer = await http.post(f"{self.url}/retire", json={"min_idle": min_idle})
            said = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            return f"it did not answer: {exc!r}"
        if answer.status_code != 200 or not isinstance(said, dict):
            return f"it answered HTTP {answer.status_code}"
        return None if said.get("retired") is True else str(said.get("why") or "it refused")

    def memory(self) -> int | None:
        """Resident memory in bytes (Linux), None where unknown."""
        return resident_memory(self.process.pid)

    def info(self, hive: str) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            hive=hive,
            model=self.model,
            backend=self.backend,
            quantization=self.quantization,
            device=self.device,
            url=self.url,
            pid=self.process.pid,
            state=WorkerState.BUSY if self.busy else WorkerState.IDLE,
            slots=self.slots,
            jobs_served=self.jobs_served,
            memory=self.memory(),
            reserved=self.reserved,
            keep_alive=self.keep_alive,
            idle_since=self.idle_since,
            parts=self.parts,
        )

    def to_json(self, hive: str) -> dict[str, Any]:
        return self.info(hive).to_json()

    def describe(self) -> str:
        return (
            f"{self.id} ({self.model} on {self.device} with {self.backend}, pid {self.process.pid})"
        )

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after ``grace`` seconds."""
        await stop_process(self.process, grace)
        if self._watch is not None:
            await asyncio.gather(self._watch, return_exceptions=True)


async def _drain(worker: WorkerProcess, stdout: asyncio.StreamReader) -> None:
    """Keep reading the worker's stdout (so it never blocks on a full pipe) until it exits."""
    while await stdout.readline():
        pass
    code = await worker.process.wait()
    log.info("worker %s exited with code %s", worker.describe(), code)


async def spawn_worker(
    model: LocalModel,
    backend: str,
    device: str,
    emit: Emit,
    start_timeout: float,
    *,
    hive_url: str = "",
    heartbeat: float = 2.0,
    host: str = "127.0.0.1",
    advertise_host: str | None = None,
    kv_tokens: int | None = None,
    reserved: int = 0,
    launch: Launch | None = None,
    parts: tuple[ModelPart, ...] = (),
) -> WorkerProcess:
    """Start a worker for files already on this machine and wait until it serves; its
    narration goes to ``emit`` meanwhile. ``kv_tokens`` sizes its KV cache where the
    backend's default would not fit; ``advertise_host`` is the address it gives out (the
    hive's, which the queen reaches) when it binds to every address; ``launch`` starts the
    process (a child of the hive by default)."""
    worker_id = f"worker-{os.getpid()}-{next(_ids)}"
    log_path = logs_dir() / f"{worker_id}.log"
    token = new_secret()
    env = {**os.environ, WORKER_TOKEN_ENV: token}  # never argv: ps shows every argv
    if kv_tokens is not None:
        env["RBEE_KV_CACHE"] = f"{kv_tokens} tokens"
    if parts:  # their tokens too: the environment, never argv
        env[WORKER_PARTS_ENV] = json.dumps([p.to_json() for p in parts])
    argv = [
        sys.executable,
        "-m",
        "rbee_worker",
        "--model",
        model.name,
        "--model-path",
        str(model.path),
        "--model-format",
        model.format,
        "--backend",
        backend,
        "--device",
        device,
        "--worker-id",
        worker_id,
        "--hive-url",
        hive_url,
        "--heartbeat",
        str(heartbeat),
        "--host",
        host,
        *(["--advertise-host", advertise_host] if advertise_host else []),
    ]
    open_private(log_path, truncate=True).close()
    process = await (launch or _child)(argv, env, log_path, device, reserved, emit)
    assert process.stdout is not None
    try:
        ready = await asyncio.wait_for(_read_until_ready(process.stdout, emit), start_timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise WorkerFailed(
            f"the worker for {model.name} did not become ready within {start_timeout:.0f} s; "
            f"its log: {log_path}"
        ) from None
    except WorkerFailed as exc:
        if process.returncode is None:
            process.kill()
        await process.wait()
        tail = log_tail(log_path)
        raise WorkerFailed(f"{exc.message}{'; log: ' + tail if tail else ''}") from None
    except asyncio.CancelledError:  # the queen is shutting down: leave no orphan behind
        if process.returncode is None:
            process.kill()
        await asyncio.shield(process.wait())
        raise
    worker = WorkerProcess(
        id=worker_id,
        model=model.name,
        backend=ready.backend or backend,
        device=ready.device or device,
        url=ready.url,
        process=process,
        log_path=log_path,
        slots=ready.slots,
        quantization=ready.quantization,
        reserved=reserved,
        token=token,
        parts=tuple((p.hive, p.layers) for p in parts),
    )
    worker._watch = asyncio.create_task(_drain(worker, process.stdout))
    return worker


async def _read_until_ready(stdout: asyncio.StreamReader, emit: Emit) -> WorkerReady:
    while line := await stdout.readline():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            log.debug("worker said: %s", line.decode(errors="replace").rstrip())
            continue
        kind = message.get("type")
        if kind == "narration":
            emit(Narration.from_json({"actor": "llm-worker-rbee", **message}))
        elif kind == "ready":
            return WorkerReady.from_json(message)
        elif kind == "error":
            raise WorkerFailed(f"the worker could not start: {message.get('message')}")
    raise WorkerFailed("the worker exited before it was ready")
