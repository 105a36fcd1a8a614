"""A hive on a Ray node starts each worker as a Ray actor on that node, which reserves the
CPUs, GPUs and memory the worker uses: Ray's scheduler, and every other workload on the
cluster, see rbee's share. While Ray cannot grant them, the job waits and says so.

The worker's process is the actor's child on the hive's own machine, so the hive still
reads its memory, signals it and reads its output (through a file) directly.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rbee_core.errors import WorkerFailed
from rbee_core.narration import Narration
from rbee_core.private_files import open_private
from rbee_core.settings import RAY_GRANT_TIMEOUT, RAY_WORKER_CPUS
from rbee_core.units import human_bytes
from rbee_hive.workers import Emit
from rbee_ray.actors import ProcessActor
from rbee_ray.connection import connect

__all__ = ["RayProcess", "launcher"]

SAY_EVERY = 15.0  # seconds between "still waiting for Ray" narrations


class RayProcess:
    """A worker's process run by its Ray actor, as ``asyncio.subprocess.Process`` is used."""

    def __init__(self, actor: Any, pid: int, stdout: Path) -> None:
        self.actor = actor
        self.pid = pid
        self.returncode: int | None = None
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader(limit=1 << 20)
        self._exited = asyncio.ensure_future(self._wait())
        self._tail = asyncio.ensure_future(self._follow(stdout))

    async def _wait(self) -> int:
        try:
            code = int(await self.actor.wait.remote())
        except RayError:  # the actor died (its node did): its process died with it
            code = -signal.SIGKILL
        self.returncode = code
        ray.kill(self.actor, no_restart=True)  # its reservation ends with the worker
        return code

    async def _follow(self, path: Path) -> None:
        """Feed the worker's stdout file to ``stdout`` until the worker exits."""
        assert self.stdout is not None
        pause = 0.05  # quick while it starts up; a loaded worker says little: look less often
        with open(path, "rb") as out:  # noqa: ASYNC230 (a local file, read as it grows)
            while True:
                data = out.read(1 << 16)
                if data:
                    self.stdout.feed_data(data)
                    pause = 0.05
                elif self._exited.done():
                    self.stdout.feed_eof()
                    return
                else:
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 1.0)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        if self.returncode is not None:
            raise ProcessLookupError(self.pid)
        os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _ask(cpus: float, gpus: int, memory: int) -> str:
    parts = [f"{cpus:g} CPU"] + ([f"{gpus} GPU"] if gpus else [])
    return " and ".join([*parts, human_bytes(memory)] if memory else parts)


def launcher(address: str, node: str) -> object:
    """The ``rbee_worker_launcher`` of a hive on Ray node ``node``."""
    # Read once, when the hive starts: what each worker reserves, how long it waits for it.
    cpus = RAY_WORKER_CPUS.read()
    grant_timeout = RAY_GRANT_TIMEOUT.read()

    async def launch(
        argv: list[str], env: dict[str, str], log_path: Path, device: str, reserved: int, emit: Emit
    ) -> RayProcess:
        await connect(address)
        gpus = 1 if device.startswith("cuda") else 0
        ask = _ask(cpus, gpus, reserved)
        where = f"Ray node {node[:8]}"
        stdout = log_path.with_suffix(".out")
        open_private(stdout, truncate=True).close()
        if gpus:  # Ray hands the actor its GPU; the worker uses the one rbee placed it on
            env = {**env, "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}
        actor = ProcessActor.options(  # type: ignore[attr-defined]
            name=f"rbee-{log_path.stem}",
            num_cpus=cpus,
            num_gpus=gpus,
            memory=reserved or None,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
        ).remote(argv, env, str(stdout), str(log_path))
        started = asyncio.ensure_future(actor.pid.remote())
        waited = 0.0
        while True:
            try:
                pid = int(await asyncio.wait_for(asyncio.shield(started), 1.0))
                break
            except TimeoutError:
                waited += 1.0
            except RayError as exc:
                raise WorkerFailed(f"Ray could not start the worker on {where}: {exc}") from None
            if waited >= grant_timeout:
                started.cancel()
                ray.kill(actor, no_restart=True)
                raise WorkerFailed(
                    f"Ray did not grant {ask} on {where} within {grant_timeout:.0f} s"
                )
            if waited == 2.0 or waited % SAY_EVERY == 0:
                emit(
                    Narration(
                        "rbee-hive",
                        "ray_wait",
                        f"waiting for Ray to grant {ask} on {where}: other work holds them "
                        "(`ray status` shows the cluster's demands)",
                    )
                )
        emit(
            Narration(
                "rbee-hive",
                "ray_granted",
                f"Ray granted {ask} on {where}; the worker runs as Ray actor rbee-{log_path.stem}",
            )
        )
        return RayProcess(actor, pid, stdout)

    return launch
