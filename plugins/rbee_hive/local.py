"""The hive for this machine: its devices, and the workers it started."""

from __future__ import annotations

import asyncio
import os

from rbee_core.models import LocalModel
from rbee_core.scheduling import Candidate
from rbee_hive.devices import Device, detect_devices
from rbee_hive.store import ModelStore
from rbee_hive.workers import Emit, WorkerProcess, spawn_worker

__all__ = ["LocalHive"]


class LocalHive:
    """Spawns and tracks workers on this machine. One worker per (model, device) at a time."""

    name = "localhost"

    def __init__(self, store: ModelStore, start_timeout: float | None = None) -> None:
        self.store = store
        self.devices: list[Device] = detect_devices()
        self.workers: dict[str, WorkerProcess] = {}
        self.start_timeout = start_timeout or float(
            os.environ.get("RBEE_WORKER_START_TIMEOUT", "600")
        )
        self._starting: dict[tuple[str, str], asyncio.Task[WorkerProcess]] = {}

    def describe_devices(self) -> str:
        parts = []
        for d in self.devices:
            gib = d.total_memory / 2**30
            extra = f"{d.cores} cores, " if d.cores else ""
            parts.append(f"{d.id} ({d.name}, {extra}{gib:.0f} GiB)")
        return ", ".join(parts)

    def _prune(self) -> None:
        for worker_id in [w.id for w in self.workers.values() if not w.alive]:
            del self.workers[worker_id]

    def candidates(self, model: str) -> list[Candidate]:
        """Live workers that serve ``model``, then every device a new worker could use."""
        self._prune()
        found = [
            Candidate(self.name, w.device, worker_id=w.id, model=w.model, busy=w.waiting)
            for w in self.workers.values()
            if w.model == model
        ]
        found += [Candidate(self.name, d.id, free_memory=d.free_memory) for d in self.devices]
        return found

    async def start_worker(
        self, model: LocalModel, device: str, emit: Emit, backend: str = "auto"
    ) -> WorkerProcess:
        """A new worker for ``model`` on ``device``; concurrent asks share one start."""
        key = (model.name, device)
        task = self._starting.get(key)
        if task is None:
            task = asyncio.create_task(
                spawn_worker(model, backend, device, emit, self.start_timeout)
            )
            self._starting[key] = task
            task.add_done_callback(lambda _: self._starting.pop(key, None))
        worker = await asyncio.shield(task)
        self.workers[worker.id] = worker
        return worker

    async def stop_all(self) -> None:
        """Stop every worker this hive started (cascading shutdown)."""
        for task in list(self._starting.values()):
            task.cancel()
        await asyncio.gather(*(w.stop() for w in self.workers.values()), return_exceptions=True)
        self.workers.clear()
        self.store.close()
