"""The queen keeps one rbee-hive on every alive Ray node, as a Ray actor pinned to the node.

A node that joins gets a hive at the next look (once a second). A node that dies takes its
hive's actor, and with it the hive's process, down: its heartbeats stop and the queen marks
it unreachable through the usual path (its jobs end with an error naming it, new jobs go
elsewhere). A hive whose process exits on a live node is started again. The actors belong
to the queen's connection to Ray, so they end when the queen does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rbee_core.paths import logs_dir
from rbee_core.peer_identity import HIVE_LAUNCH_TOKEN_ENV
from rbee_queen.orchestrator import Queen
from rbee_ray.actors import ProcessActor
from rbee_ray.connection import connect
from rbee_ray.settings import ADDRESS_ENV, NODE_ENV

__all__ = ["NodeWatcher", "hive_name"]

log = logging.getLogger("rbee.ray")
LOOK_EVERY = 1.0  # seconds between looks at the cluster's nodes


def hive_name(node_id: str) -> str:
    """``ray-3f2a1b0c``: a Ray node's hive, named by its node id (node addresses repeat)."""
    return f"ray-{node_id[:8]}"


@dataclass
class _Hive:
    actor: Any
    exited: asyncio.Future[Any]


class NodeWatcher:
    def __init__(self, queen: Queen, address: str) -> None:
        self.queen = queen
        self.address = address
        self.hives: dict[str, _Hive] = {}  # by node id

    async def run(self) -> None:
        # Said before joining: a job that comes meanwhile waits for Ray's hives rather than
        # have the queen start one of its own.
        self.queen.fleet.hive_source = f"the Ray cluster at {self.address}"
        self.gcs = await self._join()
        self.queen.fleet.hive_source = f"the Ray cluster at {self.gcs}"
        self.queen.fleet.hive_source_problem = None
        log.info("keeping a hive on every node of the Ray cluster at %s", self.gcs)
        while True:
            try:
                nodes = await asyncio.to_thread(ray.nodes)
                self._tend({n["NodeID"]: n for n in nodes if n.get("Alive")})
            except Exception:  # a failed look must not end the watch
                log.exception("could not look at the Ray cluster's nodes")
            await asyncio.sleep(LOOK_EVERY)

    async def _join(self) -> str:
        """Join the cluster, again and again until it answers; meanwhile the jobs that wait
        for a hive are told why none comes."""
        fleet = self.queen.fleet
        delay = 2.0
        while True:
            joining = asyncio.ensure_future(connect(self.address))
            try:
                while True:
                    try:
                        return await asyncio.wait_for(asyncio.shield(joining), 20.0)
                    except TimeoutError:  # Ray retries quietly, in its own log lines
                        fleet.hive_source_problem = "it has not answered the queen for 20 s"
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ...
                fleet.hive_source_problem = f"the queen cannot join it: {exc}"
                log.error("cannot join the Ray cluster at %s: %s", self.address, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _tend(self, alive: dict[str, dict[str, Any]]) -> None:
        for node_id in [n for n in self.hives if n not in alive]:
            log.warning(
                "Ray node %s is gone; its hive %s will be marked unreachable",
                node_id,
                hive_name(node_id),
            )
            del self.hives[node_id]
        for node_id, node in alive.items():
            hive = self.hives.get(node_id)
            if hive is not None and hive.exited.done():
                log.warning("the hive on Ray node %s exited; starting it again", node_id)
                hive = None
            if hive is None:
                self.hives[node_id] = self._start(node_id, node)

    def _start(self, node_id: str, node: dict[str, Any]) -> _Hive:
        name = hive_name(node_id)
        host = node.get("NodeManagerAddress") or "127.0.0.1"
        argv = [
            sys.executable,
            "-m",
            "rbee_hive",
            "--queen-url",
            self.queen.url,
            "--name",
            name,
            "--host",
            host,
            "--port",
            "0",
            "--heartbeat",
            str(self.queen.heartbeat),
            "--label",
            f"ray_node={node_id}",
        ]
        # The launch token lets the hive take its name back if it restarts on a new port.
        env = {
            **os.environ,
            NODE_ENV: node_id,
            ADDRESS_ENV: self.gcs,
            HIVE_LAUNCH_TOKEN_ENV: self.queen.fleet.launch_token(name),
        }
        logs = logs_dir()
        log.info("Ray node %s (%s) joined: starting hive %s there", node_id, host, name)
        actor = ProcessActor.options(  # type: ignore[attr-defined]
            name=f"rbee-hive-{node_id[:8]}",
            num_cpus=0,  # the hive only tends its workers, which reserve their own
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(argv, env, str(logs / f"hive-{name}.out"), str(logs / f"hive-{name}.log"))
        exited = asyncio.ensure_future(self._exit_of(actor))
        return _Hive(actor, exited)

    @staticmethod
    async def _exit_of(actor: Any) -> Any:
        try:
            return await actor.wait.remote()
        except RayError as exc:
            return exc
