"""Starting hives: on this machine as a child process, or on another through ``ssh``."""

from __future__ import annotations

import asyncio
import shlex
import sys

from rbee_core.paths import logs_dir

__all__ = ["spawn_local_hive", "ssh_command"]


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


def ssh_command(host: str, queen_url: str, port: int = 8600, heartbeat: float = 2.0) -> list[str]:
    """The exact command that starts a hive on ``host`` through the system ssh client.

    The remote hive binds to all of the host's addresses (the queen and its workers' clients
    must reach it) and is named after the host. BatchMode: fail rather than ask for a password
    nobody can type.
    """
    remote = shlex.join(
        [
            "rbee-hive",
            "--queen-url",
            queen_url,
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--name",
            host,
            "--heartbeat",
            str(heartbeat),
        ]
    )
    return [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        host,
        f"nohup {remote} > /tmp/rbee-hive.log 2>&1 &",
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
