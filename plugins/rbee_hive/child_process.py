"""What the hive does the same for every process it starts (workers, parts of split
models): read its resident memory, stop it, read the end of its log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Protocol

__all__ = ["ProcessHandle", "log_tail", "resident_memory", "stop_process"]


class ProcessHandle(Protocol):
    """What the hive uses of a worker's process: ``asyncio.subprocess.Process``, or what a
    launcher plugin returns (hookspec ``rbee_worker_launcher``)."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    @property
    def stdout(self) -> asyncio.StreamReader | None: ...
    async def wait(self) -> int: ...
    def send_signal(self, signal: int) -> None: ...
    def kill(self) -> None: ...


def resident_memory(pid: int) -> int | None:
    """Resident memory in bytes (Linux), None where unknown."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


async def stop_process(process: ProcessHandle, grace: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``grace`` seconds."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def log_tail(path: Path, lines: int = 5) -> str:
    """The last ``lines`` of a log, on one line (`` | `` between them)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])
