"""A program run at a pseudo-terminal, as a person runs it: its stdin, stdout and stderr are
the terminal, which is its controlling terminal, so typing Ctrl-C (``\\x03``) there sends
it SIGINT through the terminal's line discipline, as a keyboard does."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import termios
import threading
import time

__all__ = ["PtySession"]


def _become_terminal_owner() -> None:
    """In the child, after ``setsid``: the terminal (fd 0) becomes the controlling one, and
    SIGINT does what it does at a shell (a run in the background inherits it ignored, and
    Python then never raises KeyboardInterrupt)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class PtySession:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        self._master = master
        self.process = subprocess.Popen(
            argv,
            env={**env, "TERM": "dumb"},  # no colours nor bracketed-paste escapes
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_become_terminal_owner,
        )
        os.close(slave)
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # EIO: the program closed the terminal (it exited)
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk

    @property
    def output(self) -> str:
        """All the terminal showed so far, line ends as ``\\n``."""
        with self._lock:
            text = self._output.decode(errors="replace")
        return text.replace("\r\n", "\n").replace("\r", "")

    def type(self, text: str) -> None:
        os.write(self._master, text.encode())

    def wait_for(self, predicate: object, timeout: float, what: str) -> None:
        """Until ``predicate(output)`` holds; fail naming ``what`` with the output so far."""
        deadline = time.monotonic() + timeout
        while not predicate(self.output):  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; the terminal shows:\n"
                    f"{self.output}"
                )
            if self.process.poll() is not None:
                time.sleep(0.2)  # the last output may still be in flight
                if not predicate(self.output):  # type: ignore[operator]
                    raise AssertionError(
                        f"the program exited ({self.process.returncode}) while waiting for "
                        f"{what}; the terminal shows:\n{self.output}"
                    )
                return
            time.sleep(0.05)

    def wait_exit(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            os.close(self._master)
