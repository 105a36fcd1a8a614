"""Proof and timings for steps/support/ray_cluster.py (needs root, `ip`, and rbee[ray]).

    python benchmarks/ray_probe.py

Starts a 2-node cluster in a network namespace, runs a driver in it that pins one actor to
each node (each with a child process tied to it by PR_SET_PDEATHSIG) plus a detached named
actor, kills the second node and measures how long until the GCS says it is dead and until
its actor's child is gone; then checks resource accounting in `ray status`, how a pending
actor shows from a driver without the dashboard, and that the detached actor outlives its
driver. Prints one line per finding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DRIVER = r"""
import ctypes, json, os, signal, subprocess, sys, time
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

address, head, other = sys.argv[1:4]
phase = sys.argv[4]
ray.init(address=address, namespace="rbee", logging_level="ERROR", log_to_driver=False)

def say(**kw):
    print("@@" + json.dumps(kw), flush=True)

def _die_with_parent():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

@ray.remote
class Holder:
    def __init__(self):
        # A session of its own: only PR_SET_PDEATHSIG can end it, not a kill of the node's.
        self.child = subprocess.Popen(["sleep", "1000"], preexec_fn=_die_with_parent,
                                      start_new_session=True)
    def info(self):
        ctx = ray.get_runtime_context()
        return {"node": ctx.get_node_id(), "pid": os.getpid(), "child": self.child.pid}
    def ready(self):
        return True

def pin(node, **kw):
    return Holder.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
        node, soft=False), **kw).remote()

if phase == "one":
    a, b = pin(head), pin(other)
    keeper = pin(head, name="keeper", lifetime="detached")
    say(a=ray.get(a.info.remote()), b=ray.get(b.info.remote()),
        keeper=ray.get(keeper.info.remote()))
    sys.stdin.readline()  # the node is killed now
    t0 = time.time()
    while True:
        node = [n for n in ray.nodes() if n["NodeID"] == other][0]
        if not node["Alive"]:
            break
        time.sleep(0.05)
    say(dead_seen=time.time(), nodes_call_loop=time.time() - t0)
    try:
        ray.get(b.info.remote(), timeout=30)
        say(b_call="ok?!")
    except Exception as e:
        say(b_call=f"{type(e).__name__}: {str(e)[:600]}")
    print("@@" + json.dumps({"a_still": ray.get(a.info.remote())}), flush=True)

    # Resource accounting, with the head (2 CPUs) the only node left.
    x = Holder.options(num_cpus=1, memory=200 * 2**20).remote()
    ray.get(x.ready.remote())
    t0 = time.time()
    while time.time() - t0 < 30:
        st = subprocess.run(["ray", "status", "--address", address], capture_output=True,
                            text=True)
        if "1.0/2.0 CPU" in st.stdout:
            break
    say(status_with_x=st.stdout, status_shows_x_after=time.time() - t0)
    y = Holder.options(num_cpus=2).remote()  # feasible, not available now: pending
    z = Holder.options(num_cpus=3).remote()  # no node has 3: infeasible, pending forever
    t0 = time.time()
    ready, _ = ray.wait([y.ready.remote()], timeout=3)
    say(wait_pending_ready=len(ready), waited=time.time() - t0)
    try:
        from ray.util.state import list_actors
        rows = list_actors(address=address, timeout=5)
        say(state_api=[(r.class_name, r.state) for r in rows])
    except Exception as e:
        say(state_api=f"{type(e).__name__}: {str(e)[:400]}")
    try:
        table = ray._private.state.actors()  # the GCS actor table, no dashboard needed
        say(gcs_actor_table=sorted((v["State"], v.get("RequiredResources", {}).get("CPU", 0))
                                   for v in table.values()))
    except Exception as e:
        say(gcs_actor_table=f"{type(e).__name__}: {str(e)[:400]}")
    say(y_state=ray._private.state.actors(actor_id=y._actor_id.hex())["State"],
        x_state=ray._private.state.actors(actor_id=x._actor_id.hex())["State"])
    st = subprocess.run(["ray", "status", "--address", address], capture_output=True, text=True)
    say(status_pending=st.stdout)
    ray.kill(x)
    ready, _ = ray.wait([y.ready.remote()], timeout=30)
    say(y_ready_after_x_killed=len(ready))
else:
    keeper = ray.get_actor("keeper", namespace="rbee")
    say(keeper_after=ray.get(keeper.info.remote()))
    ray.kill(keeper)
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def memory(pids: list[int]) -> tuple[float, float]:
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return rss / 1024, pss / 1024


def main() -> None:
    from steps.support.ray_cluster import RayCluster

    home = Path(tempfile.mkdtemp(prefix="rbee-ray-probe-"))
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    if "--ray-default-health-check" in sys.argv:  # Ray's own values (ray_config_def.h)
        env |= {
            "RAY_health_check_initial_delay_ms": "5000",
            "RAY_health_check_period_ms": "3000",
            "RAY_health_check_timeout_ms": "10000",
            "RAY_health_check_failure_threshold": "5",
        }
    cluster = RayCluster(home, env)
    try:
        t = time.monotonic()
        address = cluster.start_head(num_cpus=2, memory=2 * 2**30)
        print(f"start_head: {time.monotonic() - t:.1f} s -> {address} {cluster.head_id}")
        t = time.monotonic()
        other = cluster.add_node(num_cpus=1, memory=2 * 2**30)
        print(f"add_node: {time.monotonic() - t:.1f} s -> {other}")
        time.sleep(3)
        for name, node in (("head", cluster.head_id), ("node", other)):
            assert node is not None
            rss, pss = memory(cluster.node_pids(node))
            print(
                f"idle {name}: {len(cluster.node_pids(node))} processes, "
                f"RSS {rss:.0f} MiB, PSS {pss:.0f} MiB"
            )
        t = time.monotonic()
        nodes = cluster.nodes()
        print(
            f"nodes(): {time.monotonic() - t:.1f} s, "
            f"{[(n['NodeID'][:8], n['Alive']) for n in nodes]}"
        )

        driver = cluster.popen(
            [sys.executable, "-c", DRIVER, address, str(cluster.head_id), other, "one"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert driver.stdin is not None and driver.stdout is not None

        def read() -> dict[str, Any]:
            for line in driver.stdout:  # type: ignore[union-attr]
                if line.startswith("@@"):
                    return dict(json.loads(line[2:]))
            raise RuntimeError(f"driver ended ({driver.wait()})")

        info = read()
        print("actors:", json.dumps(info))
        assert info["a"]["node"] == cluster.head_id and info["b"]["node"] == other
        time.sleep(1)
        child = info["b"]["child"]
        print(f"children alive after 1 s: a {alive(info['a']['child'])}, b {alive(child)}")
        t0 = time.time()
        cluster.remove_node(other)
        killed = time.time()
        driver.stdin.write("go\n")
        driver.stdin.flush()
        while alive(child) and time.time() - t0 < 60:
            time.sleep(0.01)
        gone = time.time()
        dead = read()
        print(f"remove_node (SIGKILL of the node's session, waits its pids): {killed - t0:.2f} s")
        print(f"child of b gone {gone - t0:.2f} s after the kill began (alive: {alive(child)})")
        print(f"ray.nodes() says dead {dead['dead_seen'] - t0:.2f} s after the kill began")
        driver.stdin.close()
        for line in driver.stdout:
            if line.startswith("@@"):
                for key, value in json.loads(line[2:]).items():
                    print(f"{key}:", value if isinstance(value, str) else json.dumps(value))
        print("driver one exit:", driver.wait(timeout=60))
        time.sleep(2)
        print(
            f"after driver one ended: child of non-detached a alive {alive(info['a']['child'])}"
            f", child of detached keeper alive {alive(info['keeper']['child'])}"
        )
        done = cluster.run(
            [sys.executable, "-c", DRIVER, address, str(cluster.head_id), other, "two"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        print(
            "driver two:",
            [ln for ln in done.stdout.splitlines() if ln.startswith("@@")],
            done.returncode,
            done.stderr[-500:] if done.returncode else "",
        )
        time.sleep(1)
        print(f"after ray.kill(keeper): its child alive {alive(info['keeper']['child'])}")
    finally:
        t = time.monotonic()
        cluster.close()
        print(f"close: {time.monotonic() - t:.2f} s; logs in {home}")
    left = subprocess.run(["pgrep", "-f", str(cluster.temp_dir)], capture_output=True, text=True)
    print("left over:", left.stdout.split() or "none")


if __name__ == "__main__":
    main()
