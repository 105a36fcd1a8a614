"""``rbee-hive --detach``: run in the background, but answer first whether it joined.

Whoever starts a hive on another machine (``rbee-keeper hive start --ssh``) needs the
outcome, not a process that might be failing in silence: the parent waits until the child
has joined its queen, or said why it could not, or exited, and reports that with the first
lines of the child's log. Only then does it exit, closing the ssh session's output.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rbee_core.private_files import PRIVATE_FILE_MODE, private_dir

__all__ = ["detach"]

LOG_HEAD = 20  # lines of the child's log shown with a failure


def _head(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(f"  {line}" for line in lines[:LOG_HEAD])


def _wait_for_child(pid: int, read_fd: int, log: Path, timeout: float) -> None:
    """In the parent: exit 0 once the child joined, else 1 with its reason and log."""
    deadline = time.monotonic() + timeout
    said = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(read_fd, 4096)
        if not chunk:  # the child closed its end: it reported, or it died
            break
        said += chunk
        if said.endswith(b"\n"):
            break
    message = said.decode(errors="replace").strip()
    if message.startswith("joined"):
        print(f"rbee-hive {message}; log: {log}", flush=True)
        os._exit(0)
    finished, status = os.waitpid(pid, os.WNOHANG)
    if finished:
        why = message or f"it exited (code {os.waitstatus_to_exitcode(status)}) before joining"
    else:
        os.kill(pid, signal.SIGTERM)  # it would go on retrying; whoever asked has the reason
        why = message or f"it did not join within {timeout:.0f} s"
    print(f"rbee-hive did not start: {why}\nits log, {log}:\n{_head(log)}", file=sys.stderr)
    os._exit(1)


def detach(log: Path, timeout: float = 30.0) -> Callable[[str | None, str], None]:
    """Fork. The parent never returns (see ``_wait_for_child``); the child, in a session of
    its own with its output in ``log``, gets the function that reports whether it joined:
    ``(None, what)`` when it joined, else ``(reason, "")``."""
    private_dir(log.parent)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        _wait_for_child(pid, read_fd, log, timeout)
    os.close(read_fd)
    os.setsid()  # an ssh session's end must not hang it up
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    os.fchmod(out, PRIVATE_FILE_MODE)  # a log an older rbee made
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)

    def report(error: str | None, joined: str) -> None:
        line = f"joined {joined}\n" if error is None else f"{error}\n"
        try:
            os.write(write_fd, line.encode())
            os.close(write_fd)
        except OSError:
            pass  # the parent gave up waiting; the log has it

    return report
