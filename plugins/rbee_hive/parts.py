"""Parts of split models this hive serves to workers on other hives (rbee_core.model_split).

A part is a process of the model's backend (llama.cpp's RPC server behind its token guard:
rbee_llamacpp/part.py) holding some of a model's layers for one worker elsewhere. The hive
starts it when the queen asks, counts what it holds in its room check, lists it, and stops
it when asked; it ends on its own once its worker is gone.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rbee_core.errors import WorkerFailed
from rbee_core.messages import PartInfo
from rbee_core.paths import logs_dir
from rbee_core.peer_identity import PART_TOKEN_ENV, new_secret
from rbee_core.private_files import open_private
from rbee_hive.child_process import log_tail, resident_memory, stop_process

__all__ = ["PartProcess", "spawn_part"]

log = logging.getLogger("rbee.hive")
_ids = itertools.count(1)
# A part's process prints its port within this (it loads llama.cpp's library, no model).
START_TIMEOUT = 60.0


@dataclass(eq=False)
class PartProcess:
    """A part this hive started: ``layers`` of ``model`` for the worker on ``for_hive``,
    served at ``endpoint`` to a peer holding ``token``."""

    id: str
    model: str
    layers: int
    for_hive: str
    endpoint: str
    token: str = field(repr=False)
    process: asyncio.subprocess.Process = field(repr=False)
    log_path: Path
    reserved: int  # bytes the hive set aside for it: its layers, their KV cache, its runtime
    started: float = field(default_factory=time.time)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def memory(self) -> int | None:
        """Resident memory in bytes (Linux), None where unknown."""
        return resident_memory(self.process.pid)

    def held(self) -> int:
        return max(self.memory() or 0, self.reserved)

    def info(self) -> PartInfo:
        """As the hive reports it in its heartbeats."""
        return PartInfo(
            self.id, self.model, self.layers, self.for_hive, self.memory(), self.reserved
        )

    def to_json(self, hive: str) -> dict[str, Any]:
        """As the hive lists it: never its token."""
        return self.info().to_json() | {
            "hive": hive,
            "endpoint": self.endpoint,
            "pid": self.process.pid,
            "started": self.started,
        }

    def describe(self) -> str:
        return f"{self.id} ({self.layers} layers of {self.model} for hive {self.for_hive})"

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after ``grace`` seconds."""
        await stop_process(self.process, grace)


async def spawn_part(
    argv: list[str],
    *,
    model: str,
    layers: int,
    for_hive: str,
    advertise_host: str,
    reserved: int,
) -> PartProcess:
    """Start a part's process (``argv``: its backend's ``part_command``) with a fresh token
    in its environment, and wait until it serves."""
    part_id = f"part-{os.getpid()}-{next(_ids)}"
    log_path = logs_dir() / f"{part_id}.log"
    token = new_secret()
    open_private(log_path, truncate=True).close()
    with open_private(log_path) as stderr:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, PART_TOKEN_ENV: token},  # never argv: ps shows every argv
        )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        said = json.loads(line) if line else {}
    except (TimeoutError, ValueError):
        said = {}
    if not isinstance(said, dict) or said.get("type") != "ready":
        if process.returncode is None:
            process.kill()
        await process.wait()
        why = said.get("message") if isinstance(said, dict) else None
        tail = log_tail(log_path, 3)
        raise WorkerFailed(
            f"the part of {model} did not start: {why or 'no answer'}"
            + (f"; log: {tail}" if tail else "")
        )
    host = f"[{advertise_host}]" if ":" in advertise_host else advertise_host
    part = PartProcess(
        part_id,
        model,
        layers,
        for_hive,
        f"{host}:{said['port']}",
        token,
        process,
        log_path,
        reserved,
    )
    log.info("part %s serves at %s", part.describe(), part.endpoint)
    return part
