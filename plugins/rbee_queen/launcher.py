"""Starting this machine's hive as a child process of the queen (hives on other machines are
started there, by ``rbee-keeper hive start --ssh``)."""

from __future__ import annotations

import asyncio
import sys

from rbee_core.paths import logs_dir

__all__ = ["spawn_local_hive"]


def local_command(queen_url: str, name: str, heartbeat: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rbee_hive",
        "--queen-url",
        queen_url,
        "--port",
        "0",
        "--name",
        name,
        "--heartbeat",
        str(heartbeat),
        "--exit-with-parent",  # a queen that dies by SIGKILL leaves no hive behind
    ]


async def spawn_local_hive(
    queen_url: str, name: str, heartbeat: float
) -> asyncio.subprocess.Process:
    log = open(logs_dir() / f"hive-{name}.log", "ab")  # noqa: ASYNC230, SIM115 (lives with it)
    try:
        return await asyncio.create_subprocess_exec(
            *local_command(queen_url, name, heartbeat),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    finally:
        log.close()
