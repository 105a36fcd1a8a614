"""Starting this machine's hive as a child process of the queen (hives on other machines are
started there, by ``rbee-keeper hive start --ssh``)."""

from __future__ import annotations

import asyncio
import os
import sys

from rbee_core.paths import logs_dir
from rbee_core.peer_identity import HIVE_LAUNCH_TOKEN_ENV
from rbee_core.private_files import open_private

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
    queen_url: str, name: str, heartbeat: float, launch_token: str
) -> asyncio.subprocess.Process:
    """The hive, with the launch token that lets it take its name back from another port
    (in its environment: a command line is every local user's to read)."""
    log = open_private(logs_dir() / f"hive-{name}.log")
    try:
        return await asyncio.create_subprocess_exec(
            *local_command(queen_url, name, heartbeat),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env={**os.environ, HIVE_LAUNCH_TOKEN_ENV: launch_token},
        )
    finally:
        log.close()
