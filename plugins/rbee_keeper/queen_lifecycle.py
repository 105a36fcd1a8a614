"""Starting the queen when nothing answers, and stopping only the queen we started."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click

from rbee_core.addresses import is_loopback_host
from rbee_core.paths import logs_dir
from rbee_core.private_files import open_private
from rbee_keeper.client import QueenClient
from rbee_keeper.context import Keeper

__all__ = ["QueenHandle", "ensure_queen", "is_loopback", "queen_session", "start_queen"]


def is_loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


@dataclass
class QueenHandle:
    """A queen we know is healthy. ``process`` is set only if this keeper started it."""

    client: QueenClient
    process: subprocess.Popen[bytes] | None = None

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def stop(self, keeper: Keeper, timeout: float = 30.0) -> None:
        """Ask the queen to shut down (it stops its workers) and wait for it to exit."""
        if self.process is None:
            return
        keeper.narrate("queen_stop", "stopping the queen we woke (and the workers it started)")
        try:
            self.client.shutdown()
            self.process.wait(timeout)
        except (click.ClickException, subprocess.TimeoutExpired):
            self.process.terminate()
            self.process.wait(10)
        keeper.narrate("queen_stopped", "the queen is asleep again.")


def start_queen(keeper: Keeper, client: QueenClient, timeout: float) -> subprocess.Popen[bytes]:
    """Spawn ``queen-rbee`` for ``client.url`` detached, and wait (with backoff) until healthy."""
    parts = urlsplit(client.url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 8500
    log_path = logs_dir() / f"queen-{port}.log"
    keeper.narrate("queen_wake", "queen is asleep, waking queen.")
    logged = log_path.stat().st_size if log_path.exists() else 0
    with open_private(log_path) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rbee_queen", "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C in the terminal reaches the keeper, not the queen
        )
    try:
        _wait_healthy(client, process, log_path, timeout)
    except BaseException:  # a timeout, or Ctrl-C while waiting: leave no queen behind
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        raise
    for warning in _start_warnings(log_path, logged):
        keeper.narrate("queen_warning", warning)
    keeper.narrate("queen_awake", "queen is awake and healthy.")
    return process


def _start_warnings(log_path: Path, offset: int) -> list[str]:
    """What the queen found wrong as it started (a damaged state file it moved aside), from
    its log: the user of a queen started here never sees that log otherwise."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    # "2026-12-01 16:00:00,123 rbee.sqlite queen-rbee: PATH is damaged (...); moved ..."
    return [
        line.split(" ", 3)[-1]
        for line in text.splitlines()
        if " is damaged (" in line and line.count(" ") >= 3
    ]


def _wait_healthy(
    client: QueenClient, process: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while client.health(timeout=1.0) is None:
        if process.poll() is not None:
            raise click.ClickException(
                f"the queen exited (code {process.returncode}) before it was healthy; "
                f"see {log_path}: {_last_line(log_path)}"
            )
        if time.monotonic() > deadline:
            raise click.ClickException(
                f"the queen did not become healthy within {timeout:.0f} s; see {log_path}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


@contextmanager
def queen_session(keeper: Keeper, url: str, timeout: float = 30.0) -> Iterator[QueenClient]:
    """A client of a healthy queen; a queen started for this is stopped afterwards."""
    queen = ensure_queen(keeper, url, timeout)
    try:
        yield queen.client
    finally:
        queen.stop(keeper)


def ensure_queen(keeper: Keeper, url: str, timeout: float = 30.0) -> QueenHandle:
    """A healthy queen at ``url``; started here if none answers and the URL is local."""
    client = QueenClient(url)
    if client.health() is not None:
        return QueenHandle(client)
    if not is_loopback(url):
        raise click.ClickException(
            f"no queen answers at {url}; rbee-keeper starts a queen only on this machine "
            "(a loopback URL). Start queen-rbee there, or check the URL."
        )
    return QueenHandle(client, start_queen(keeper, client, timeout))
