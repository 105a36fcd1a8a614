"""Starting, finding and stopping the real rbee processes a scenario uses."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = [
    "alive",
    "command",
    "free_port",
    "healthy",
    "kill_leftovers",
    "parent",
    "rbee_processes",
    "start_queen",
    "stop",
    "wait_until",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(program: str) -> list[str]:
    """The installed console script (as a user runs it), next to this Python."""
    path = Path(sys.executable).parent / program
    return [str(path)] if path.exists() else [shutil.which(program) or program]


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def start_queen(
    env: dict[str, str], home: Path, port: int, *extra: str, host: str = "127.0.0.1"
) -> subprocess.Popen[bytes]:
    log = open(home / f"queen-{port}.test.log", "ab")  # noqa: SIM115 (lives with the process)
    process = subprocess.Popen(
        [*command("queen-rbee"), "--host", host, "--port", str(port), *extra],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    url = f"http://{host}:{port}"
    wait_until(lambda: healthy(url) or process.poll() is not None, 60, f"queen on {url}")
    assert process.poll() is None, f"queen-rbee exited with {process.returncode}"
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rbee_processes(home: Path) -> dict[int, str]:
    """pid -> command line of every live process started with this scenario's RBEE_HOME, or
    with a state dir below it (the scenario's other hives)."""
    marker = f"RBEE_HOME={home}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if not any(v == marker or v.startswith(marker + b"/") for v in environ):
                continue
            status = (entry / "stat").read_text().split()[2]
            if status == "Z":  # a zombie has exited; its parent just has not reaped it
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found[int(entry.name)] = cmdline.strip()
    return found


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs now (a zombie has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # the name in (...) may hold spaces


def parent(pid: int) -> int | None:
    """Process ``pid``'s parent, None once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def kill_leftovers(home: Path) -> None:
    for pid in rbee_processes(home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
