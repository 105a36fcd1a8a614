"""What the benchmark scripts share: a free loopback port, and a queen started and healthy.

The scripts run as ``python benchmarks/NAME.py``, so this module is importable beside them.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

__all__ = ["free_port", "healthy", "start_queen"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_queen(
    env: dict[str, str],
    *options: str,
    new_session: bool = False,
    port: int | None = None,
    log: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """A ``queen-rbee`` on a free port, once it answers ``/health``; and its URL.

    ``new_session``: out of the terminal's process group, so that Ctrl-C reaches only the
    script, which then stops the queen (and the queen its hive and workers) in order.
    ``port``: this one instead (a queen restarted where its hives and clients know it).
    ``log``: its stdout and stderr appended there instead of thrown away.
    """
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        out: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            out = stack.enter_context(log.open("ab"))
        queen = subprocess.Popen(
            [sys.executable, "-m", "rbee_queen", "--port", str(port), *options],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=new_session,
        )
    deadline = time.monotonic() + 30
    while not healthy(url):
        if queen.poll() is not None or time.monotonic() > deadline:
            queen.kill()
            raise RuntimeError(f"queen-rbee did not become healthy (exit {queen.returncode})")
        time.sleep(0.05)
    return queen, url
