"""Daemons that must not outlive the process that started them."""

from __future__ import annotations

import os
import signal
import threading
import time

__all__ = ["exit_with_parent"]


def exit_with_parent(interval: float = 1.0) -> None:
    """SIGTERM ourselves (a graceful stop) once our parent is gone, even if it died by
    SIGKILL: its children are then re-parented, which ``getppid`` shows."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
