"""The one Ray actor rbee uses: a process of rbee's (a hive, a worker), started by Ray on the
node it is pinned to, holding what Ray granted it (CPUs, GPUs, memory) while it runs."""

from __future__ import annotations

import ctypes
import signal
import subprocess
from pathlib import Path
from typing import Any

import ray

from rbee_core.private_files import open_private, private_dir

__all__ = ["ProcessActor"]

PR_SET_PDEATHSIG = 1


def _die_with_actor() -> None:
    # Ray frees an actor's resources when the actor dies (its node died, its owner left,
    # ray.kill): a process left behind would go on using them unseen.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@ray.remote(max_restarts=0)
class ProcessActor:
    """Runs ``argv`` with ``env``; stdout and stderr appended to the given files."""

    def __init__(self, argv: list[str], env: dict[str, str], stdout: str, stderr: str) -> None:
        # Started in __init__: the actor's main thread, which lives as long as the actor
        # (PR_SET_PDEATHSIG follows the thread that started the process).
        private_dir(Path(stdout).parent)
        with open_private(Path(stdout)) as out, open_private(Path(stderr)) as err:
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=_die_with_actor,  # only prctl, between fork and exec
            )

    def pid(self) -> int:
        return self.process.pid

    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())

    def wait(self) -> int:
        """The process's exit code, once it exits."""
        return self.process.wait()

    def __repr__(self) -> Any:
        return f"ProcessActor(pid={self.process.pid})"
