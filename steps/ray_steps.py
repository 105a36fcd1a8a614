"""Steps for rbee on a real local Ray cluster, run inside a loopback-only network namespace
(steps/support/ray_cluster.py): the queen, the keeper and every request run there too."""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from typing import Any

from behave import given, then, when

from steps.support import processes
from steps.support.ray_cluster import RayCluster

QUEEN = "http://127.0.0.1:8500"  # inside the namespace, which has its own ports
NODE_MEMORY = 4 * 2**30  # each node's "memory" resource: what Ray may hand out
LONG = "Write a very long story about bees, their queen and the keeper."

_GET = "import sys, httpx; r = httpx.get(sys.argv[1], timeout=10); print(r.text)"


def _cluster(context: Any) -> RayCluster:
    cluster: RayCluster = context.ray
    return cluster


def _get(context: Any, path: str) -> Any:
    """GET from the queen, by a client inside the namespace."""
    done = _cluster(context).run(
        [sys.executable, "-c", _GET, f"{QUEEN}{path}"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _hive(context: Any, node: int) -> str:
    """The name of the hive of the cluster's ``node``-th node (1: the head)."""
    return f"ray-{context.ray_nodes[node - 1][:8]}"


@given("a Ray cluster of {n:d} nodes with 1 CPU each")
@given("a Ray cluster of {n:d} node with 1 CPU")
def step_cluster(context: Any, n: int) -> None:
    cluster = context.ray = RayCluster(context.home, context.env)
    context.cleanups.append(cluster.close)
    cluster.start_head(num_cpus=1, memory=NODE_MEMORY)
    assert cluster.head_id is not None
    context.ray_nodes = [cluster.head_id]
    for _ in range(n - 1):
        context.ray_nodes.append(cluster.add_node(num_cpus=1, memory=NODE_MEMORY))


@given("a queen runs on it with --ray")
def step_queen_on_ray(context: Any) -> None:
    cluster = _cluster(context)
    log = open(context.home / "queen-ray.test.log", "ab")  # noqa: SIM115 (lives with the queen)
    command = [*processes.command("queen-rbee"), "--ray", str(cluster.address), "--port", "8500"]
    cluster.popen(command, stdout=log, stderr=log)


@then("within {seconds:d} seconds the queen has {n:d} ready hives, one per Ray node")
@then("within {seconds:d} seconds the queen has {n:d} ready hive, one per Ray node")
def step_ray_hives(context: Any, seconds: int, n: int) -> None:
    started = time.monotonic()
    expected = {_hive(context, i + 1) for i in range(len(context.ray_nodes))}
    hives: list[dict[str, Any]] = []
    while time.monotonic() - started < seconds:
        try:
            hives = _get(context, "/hives")["hives"]
        except AssertionError:  # the queen is not up yet
            hives = []
        ready = {h["name"] for h in hives if h["state"] == "ready"}
        if ready == expected and len(ready) == n:
            for hive in hives:
                node = hive["labels"]["ray_node"]
                assert hive["name"] == f"ray-{node[:8]}" and node in context.ray_nodes, hive
            print(f"  {n} hive(s) ready {time.monotonic() - started:.1f} s after the step began")
            return
        time.sleep(0.5)
    raise AssertionError(f"after {seconds} s the queen has {hives}, not hives for {expected}")


@when("on the Ray cluster I run rbee-keeper {arguments}")
def step_keeper_on_ray(context: Any, arguments: str) -> None:
    command = [*processes.command("rbee-keeper"), *shlex.split(arguments), "--queen-url", QUEEN]
    context.result = _cluster(context).run(command, capture_output=True, text=True, timeout=300)


@then("`ray status` shows the worker's CPU and memory in use")
def step_ray_status(context: Any) -> None:
    deadline = time.monotonic() + 20
    status = ""
    while time.monotonic() < deadline:  # the autoscaler's view lags by a second or so
        status = _cluster(context).status()
        memory = re.search(r"([\d.]+)MiB/[\d.]+GiB memory", status)
        if "1.0/2.0 CPU" in status and memory and float(memory.group(1)) > 300:
            return
        time.sleep(1)
    raise AssertionError(f"ray status does not show the worker's reservation:\n{status}")


@when("a second node joins the Ray cluster")
def step_node_joins(context: Any) -> None:
    context.ray_nodes.append(_cluster(context).add_node(num_cpus=1, memory=NODE_MEMORY))


@when("on the Ray cluster I submit a long job to the hive of node {node:d}")
def step_long_job(context: Any, node: int) -> None:
    # Greedy: a sampled story may end before the node dies (as one did in cancellation).
    arguments = ["infer", LONG, "--max-tokens", "900", "--temperature", "0"]
    arguments += ["--hive", _hive(context, node), "--detach"]
    step_keeper_on_ray(context, shlex.join(arguments))
    assert context.result.returncode == 0, context.result.stderr
    context.ray_job = context.result.stdout.strip().split()[-1]


@when("the job on the Ray cluster is streaming tokens")
def step_ray_job_streaming(context: Any) -> None:
    deadline = time.monotonic() + 120
    while _get(context, f"/jobs/{context.ray_job}")["tokens"] < 3:
        assert time.monotonic() < deadline, "the job streamed no tokens in 120 s"
        time.sleep(0.5)


@when("node {node:d} dies")
def step_node_dies(context: Any, node: int) -> None:
    _cluster(context).remove_node(context.ray_nodes[node - 1])
    context.died_at = time.monotonic()


@then('within {seconds:d} seconds the hive of node {node:d} is "{state}"')
def step_hive_state(context: Any, seconds: int, node: int, state: str) -> None:
    name = _hive(context, node)
    deadline = time.monotonic() + seconds
    while True:
        hives = {h["name"]: h for h in _get(context, "/hives")["hives"]}
        if hives[name]["state"] == state:
            took = time.monotonic() - context.died_at
            print(f"  {name} {state} {took:.1f} s after its node died")
            return
        assert time.monotonic() < deadline, f"{name} is {hives[name]['state']} after {seconds} s"
        time.sleep(0.5)


@then("the job on the Ray cluster failed with an error naming the hive of node {node:d}")
def step_job_failed(context: Any, node: int) -> None:
    record = _get(context, f"/jobs/{context.ray_job}")
    assert record["state"] == "failed", record["state"]
    error = record["result"]
    assert _hive(context, node) in json.dumps(error), error


@then('stderr shows "{text}" the hive of node {node:d}')
def step_stderr_hive(context: Any, text: str, node: int) -> None:
    expected = f"{text} {_hive(context, node)}"
    assert expected in context.result.stderr, f"{expected!r} not in:\n{context.result.stderr}"


@when("on the Ray cluster I start rbee-keeper {arguments}")
def step_keeper_background(context: Any, arguments: str) -> None:
    context.bg_out = context.home / "keeper-bg.out"
    context.bg_err = context.home / "keeper-bg.err"
    command = [*processes.command("rbee-keeper"), *shlex.split(arguments), "--queen-url", QUEEN]
    with open(context.bg_out, "wb") as out, open(context.bg_err, "wb") as err:
        context.bg = _cluster(context).popen(command, stdout=out, stderr=err)


@then('within {seconds:d} seconds its stderr shows "{text}"')
def step_bg_stderr(context: Any, seconds: int, text: str) -> None:
    deadline = time.monotonic() + seconds
    while text not in context.bg_err.read_text():
        assert time.monotonic() < deadline, context.bg_err.read_text()
        time.sleep(0.3)


@when("on the Ray cluster I stop the worker of {model}")
def step_stop_worker(context: Any, model: str) -> None:
    workers = _get(context, "/workers")["workers"]
    (worker,) = [w for w in workers if w["model"] == model]
    step_keeper_on_ray(context, f"worker stop {worker['id']}")
    assert context.result.returncode == 0, context.result.stderr


@then("within {seconds:d} seconds that keeper exits with code 0 and an answer")
def step_bg_done(context: Any, seconds: int) -> None:
    code = context.bg.wait(seconds)
    assert code == 0 and context.bg_out.read_text().strip(), context.bg_err.read_text()


@then('its stderr shows "{text}"')
def step_bg_shows(context: Any, text: str) -> None:
    assert text in context.bg_err.read_text(), context.bg_err.read_text()
