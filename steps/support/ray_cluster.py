"""A real, local, isolated Ray cluster of several nodes for the specs of the Ray plugin.

Every node is a ``ray start`` of its own (the head first), all on 127.0.0.1 inside one
network namespace that has only loopback up: outside such a namespace Ray picks this
machine's own non-loopback address even when told ``--node-ip-address 127.0.0.1``. The
queen and the scenario's clients that talk to the cluster run in the same namespace
(``run`` and ``popen``); the namespace has its own port space, so fixed ports are fine.

Isolation: every Ray process gets ``HOME`` (the scenario's state dir) and one short
``--temp-dir`` (``/tmp/rb-XXXX``: Ray's AF_UNIX socket paths must stay under 107 bytes, so
a temp dir under a deep state dir fails); usage stats are off (no network). All nodes of
the cluster share that temp dir, as Ray wants for nodes on one machine (each raylet gets
its own socket names in it: ``raylet``, ``raylet.1``, ...).

Never ``ray stop`` here: it is not namespace-aware (a network namespace does not isolate
processes) and kills every Ray process of this machine, other scenarios' too. Instead each
node is started in a session of its own (``start_new_session``): its raylet, agents, log
monitor and workers (and, for the head, the GCS and the autoscaler monitor) all keep that
session id, so ``remove_node`` kills exactly one node's processes, as a machine that dies
would; ``close`` kills everything in the namespace (``ip netns pids``).

A killed node is marked DEAD by the GCS health check only, after about
``initial_delay + period * threshold`` (Ray's defaults: 5 s + 3 s * 5, plus the timeout); the
cluster's env shortens that to about one second (``RAY_health_check_*`` below, read by the
GCS, so they must be in the head's environment).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["RayCluster"]

_PREFIX = "rbee-ray"  # namespace names: rbee-ray-<pid>-<n>
_instances = itertools.count(1)
GCS_PORT = 6379  # inside the namespace: nothing else there

# The GCS checks each raylet every period; a node that misses `threshold` checks in a row is
# DEAD. These make a killed node DEAD about 1 s after its death (defaults: about 20-30 s).
HEALTH_CHECK_ENV = {
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_health_check_period_ms": "200",
    "RAY_health_check_timeout_ms": "200",
    "RAY_health_check_failure_threshold": "3",
    # `ray status` shows what the autoscaler monitor (on the head) last read from the GCS:
    # every 5 s by default, so used resources and dead nodes show there late. Every 1 s.
    "AUTOSCALER_UPDATE_INTERVAL_S": "1",
}

_NODES_SCRIPT = """
import json, sys
import ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print("@@" + json.dumps(ray.nodes(), default=str))
"""


def _session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses
    return int(stat[stat.rindex(")") + 2 :].split()[3])


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]:
            return
        time.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


class RayCluster:
    """A local Ray cluster in a network namespace of its own; see the module's doc.

    ``home`` is the scenario's state dir (every Ray process's ``HOME``; the cluster's logs
    are copied to ``home/ray-logs`` on ``close``); ``env`` is the scenario's environment,
    which every command run here gets, with ``HOME``, usage stats off and the health check
    settings added (values already in ``env`` win, so a spec may put back Ray's defaults).
    """

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.namespace = f"{_PREFIX}-{os.getpid()}-{next(_instances)}"
        self.env: dict[str, str] = {
            **HEALTH_CHECK_ENV,
            **env,
            "HOME": str(self.home),
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONUNBUFFERED": "1",
        }
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp"))
        self.address: str | None = None
        self.head_id: str | None = None
        self._sessions: dict[str, int] = {}  # node id -> session id of its processes
        self._count = 0
        self._popened: list[subprocess.Popen[Any]] = []
        self._closed = False
        subprocess.run(["ip", "netns", "add", self.namespace], check=True)
        try:
            self._ip("link", "set", "lo", "up")
        except BaseException:
            subprocess.run(["ip", "netns", "del", self.namespace], check=False)
            raise

    # -- running things inside the namespace ----------------------------------------------

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` as run inside the namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def run(self, argv: list[str], **popen_kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` to its end inside the namespace, with the cluster's env."""
        popen_kwargs.setdefault("env", self.env)
        return subprocess.run(self.command(argv), **popen_kwargs)

    def popen(self, argv: list[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start a long-running ``argv`` (the queen) inside the namespace; ``close`` ends it."""
        popen_kwargs.setdefault("env", self.env)
        process = subprocess.Popen(self.command(argv), **popen_kwargs)
        self._popened.append(process)
        return process

    def _ip(self, *args: str) -> None:
        subprocess.run(self.command(["ip", *args]), check=True)

    # -- nodes -------------------------------------------------------------------------------

    def _ray(self) -> str:
        path = Path(sys.executable).parent / "ray"
        return str(path) if path.exists() else (shutil.which("ray") or "ray")

    def _start(
        self,
        extra: list[str],
        num_cpus: int,
        resources: dict[str, float] | None,
        memory: int | None,
        object_store_memory: int,
    ) -> str:
        name = f"node-{self._count}"
        self._count += 1
        argv = [
            self._ray(), "start", "--node-ip-address", "127.0.0.1", "--node-name", name,
            "--num-cpus", str(num_cpus), "--num-gpus", "0",
            "--object-store-memory", str(object_store_memory),
            "--temp-dir", str(self.temp_dir), "--disable-usage-stats", *extra,
        ]  # fmt: skip
        if resources:
            argv += ["--resources", json.dumps(resources)]
        if memory is not None:
            argv += ["--memory", str(memory)]
        log = self.home / f"ray-start-{name}.test.log"
        with open(log, "ab") as out:
            # A session of its own: every process of this node keeps its id (see module doc).
            process = self.popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._popened.remove(process)
            try:
                code = process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                code = None
        if code != 0:
            self._kill_session(process.pid)
            raise RuntimeError(
                f"`ray start` of {name} failed ({code}); see {log}:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        node_id = self._node_id_of_session(process.pid)
        self._sessions[node_id] = process.pid
        return node_id

    def _node_id_of_session(self, sid: int) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for pid in _pids():
                args = _cmdline(pid)
                if args and Path(args[0]).name == "raylet" and _session_of(pid) == sid:
                    for arg in args:
                        if arg.startswith("--node_id="):
                            return arg.split("=", 1)[1]
            time.sleep(0.1)
        raise RuntimeError(f"no raylet found in session {sid}")

    def start_head(
        self,
        num_cpus: int = 1,
        resources: dict[str, float] | None = None,
        memory: int | None = None,
        object_store_memory: int = 100_000_000,
    ) -> str:
        """Start the head node (GCS on 127.0.0.1:6379 in the namespace); its address.

        ``memory`` is the node's logical "memory" resource in bytes (Ray's default: about
        all of this machine's free memory, on every node).
        """
        if self.address is not None:
            raise RuntimeError("the head is started already")
        self.head_id = self._start(
            ["--head", "--port", str(GCS_PORT), "--include-dashboard=false"],
            num_cpus,
            resources,
            memory,
            object_store_memory,
        )
        self.address = f"127.0.0.1:{GCS_PORT}"
        return self.address

    def add_node(
        self,
        num_cpus: int = 1,
        resources: dict[str, float] | None = None,
        memory: int | None = None,
        object_store_memory: int = 100_000_000,
    ) -> str:
        """Start one more node joined to the head; its node id (hex, as ``ray.nodes()``)."""
        if self.address is None:
            raise RuntimeError("start_head first")
        return self._start(
            ["--address", self.address], num_cpus, resources, memory, object_store_memory
        )

    def node_pids(self, node_id: str) -> list[int]:
        """The live processes of one node (raylet, agents, workers, ...)."""
        sid = self._sessions[node_id]
        return [pid for pid in _pids() if _session_of(pid) == sid and not _zombie(pid)]

    def remove_node(self, node_id: str, wait_dead: float | None = None) -> None:
        """Kill every process of that node at once (SIGKILL), as when its machine dies.

        The GCS marks it DEAD on its next failed health checks (about 1 s with the cluster's
        env). With ``wait_dead`` (seconds), wait until ``nodes()`` says so.
        Removing the head takes the GCS with it: the whole cluster is gone.
        """
        sid = self._sessions.pop(node_id)
        self._kill_session(sid)
        if wait_dead is not None:
            deadline = time.monotonic() + wait_dead
            while not any(n["NodeID"] == node_id and not n["Alive"] for n in self.nodes()):
                if time.monotonic() > deadline:
                    raise AssertionError(f"node {node_id} not dead after {wait_dead} s")
                time.sleep(0.2)

    def _kill_session(self, sid: int) -> None:
        pids = [pid for pid in _pids() if _session_of(pid) == sid]
        _kill_all(pids)
        _wait_gone(pids)

    # -- looking at it ---------------------------------------------------------------------

    def nodes(self) -> list[dict[str, Any]]:
        """``ray.nodes()`` (alive and dead) from a short driver in the namespace (~2 s)."""
        if self.address is None:
            return []
        done = self.run(
            [sys.executable, "-c", _NODES_SCRIPT, self.address],
            capture_output=True,
            text=True,
            timeout=60,
        )
        for line in done.stdout.splitlines():
            if line.startswith("@@"):
                return list(json.loads(line[2:]))
        raise RuntimeError(f"ray.nodes() failed ({done.returncode}):\n{done.stderr[-3000:]}")

    def status(self) -> str:
        """``ray status`` of the cluster: nodes and used/total resources."""
        if self.address is None:
            return ""
        done = self.run(
            [self._ray(), "status", "--address", self.address],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return str(done.stdout) + str(done.stderr)

    # -- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """End every process in the namespace, keep the logs, delete the namespace and the
        temp dir. Idempotent; leaves no process."""
        if self._closed:
            return
        self._closed = True
        for process in self._popened:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        sessions = set(self._sessions.values())
        self._sessions.clear()
        for _ in range(5):  # anything in the namespace, or in one of the nodes' sessions
            done = subprocess.run(
                ["ip", "netns", "pids", self.namespace], capture_output=True, text=True, check=False
            )
            pids = [int(p) for p in done.stdout.split()]
            pids += [pid for pid in _pids() if _session_of(pid) in sessions]
            pids = [pid for pid in pids if pid != os.getpid() and not _zombie(pid)]
            if not pids:
                break
            _kill_all(pids)
            _wait_gone(pids)
        for process in self._popened:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        subprocess.run(
            ["ip", "netns", "del", self.namespace], check=False, stderr=subprocess.DEVNULL
        )
        logs = self.temp_dir / "session_latest" / "logs"
        if logs.is_dir():
            with contextlib.suppress(OSError, shutil.Error):
                shutil.copytree(
                    logs, self.home / "ray-logs", dirs_exist_ok=True, ignore_dangling_symlinks=True
                )
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
