"""Steps of features/split.feature: one model split across this machine's hive and a hive on
the second machine (support/remote_host.py), each too small for it alone."""

from __future__ import annotations

import shlex
import socket
import time
from typing import Any

import httpx
from behave import given, then, when

from steps.hive_steps import _hives
from steps.remote_steps import _remote_processes
from steps.support import processes
from steps.support.jobs import auth

# The guard's greeting and challenge (plugins/rbee_llamacpp/rpc_guard.py): all a peer without
# the part's token ever reads.
GREETING = b"rbee-part/1\n"
CHALLENGE = 32


@given('every program\'s KV cache is "{size}" for {jobs:d} jobs at once')
def step_kv_cache(context: Any, size: str, jobs: int) -> None:
    context.env["RBEE_KV_CACHE"] = size
    context.env["RBEE_MAX_BATCH"] = str(jobs)  # 512 tokens each: the spec's long job fits


@given('hive "{name}" on the second machine joins the queen with "{options}"')
def step_remote_hive(context: Any, name: str, options: str) -> None:
    """Started as `hive start --ssh` does (the API key on ssh's stdin), with options that
    command does not pass on."""
    hive = processes.command("rbee-hive")[0]
    argv = [hive, "--queen-url", context.queen_url, "--host", "0.0.0.0", "--name", name]
    argv += ["--detach", *shlex.split(options)]
    engine = ("RBEE_KV_CACHE", "RBEE_MAX_BATCH")
    settings = "".join(
        f"export {k}={shlex.quote(v)}; " for k, v in context.env.items() if k in engine
    )
    script = f"IFS= read -r RBEE_API_KEY; export RBEE_API_KEY; {settings}exec {shlex.join(argv)}"
    key = context.env["RBEE_API_KEY"]
    done = context.remote.ssh(script, input=f"{key}\n".encode(), timeout=90)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    processes.wait_until(
        lambda: _hives(context).get(name, {}).get("state") == "ready", 60, f"hive {name}"
    )


def _parts(context: Any) -> list[tuple[int, str]]:
    """(pid, command line) of every part process on the second machine."""
    return [
        (pid, line)
        for pid, line in _remote_processes(context).items()
        if "rbee_llamacpp.part" in line and context.remote.in_namespace(pid)
    ]


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@then("a part of the model runs on the second machine, holding more than {mb:d} MB")
def step_part_runs(context: Any, mb: int) -> None:
    parts = _parts(context)
    assert len(parts) == 1, parts
    pid = parts[0][0]
    assert _rss(pid) > mb * 10**6, f"the part holds {_rss(pid) / 1e6:.0f} MB"
    context.part_pid = pid


@then('hive "{name}" lists the part for a worker on hive "{worker_hive}"')
def step_hive_lists_part(context: Any, name: str, worker_hive: str) -> None:
    url = _hives(context)[name]["url"]
    answer = httpx.get(f"{url}/parts", headers=auth(context), timeout=10).json()
    parts = answer["parts"]
    assert len(parts) == 1 and parts[0]["for_hive"] == worker_hive, parts
    assert "token" not in parts[0], parts
    assert parts[0]["pid"] == context.part_pid, parts
    context.part = parts[0]


@then('the worker on hive "{name}" holds the rest of the model')
def step_worker_rest(context: Any, name: str) -> None:
    workers = _hives(context)[name]["workers"]
    assert len(workers) == 1, workers
    worker = workers[0]
    assert worker["parts"] == [[context.part["hive"], context.part["layers"]]], worker
    context.split_worker = worker


@when("I stop the split worker")
def step_stop_split_worker(context: Any) -> None:
    context.execute_steps(f"When I run rbee-keeper worker stop {context.split_worker['id']}")


@then("no part runs on the second machine within {seconds:d} seconds")
def step_no_part(context: Any, seconds: int) -> None:
    processes.wait_until(lambda: not _parts(context), seconds, "the part to stop")


def _connect(context: Any) -> socket.socket:
    host, _, port = context.part["endpoint"].rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.settimeout(10)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the part sends until it closes the connection (a timeout fails)."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


@when("I connect to the part's port and answer its challenge with a wrong token")
def step_wrong_token(context: Any) -> None:
    with _connect(context) as sock:
        opening = sock.recv(len(GREETING) + CHALLENGE, socket.MSG_WAITALL)
        sock.sendall(bytes(32))
        context.part_said = opening + _read_all(sock)


@when("I connect to the part's port and send llama.cpp's RPC hello at once")
def step_raw_rpc(context: Any) -> None:
    started = time.monotonic()
    with _connect(context) as sock:
        # RPC_CMD_HELLO (command 14) with an empty input: what a llama.cpp client sends first.
        sock.sendall(bytes([14]) + (0).to_bytes(8, "little"))
        context.part_said = _read_all(sock)
    context.part_took = time.monotonic() - started


@then("the part closes the connection having sent only its greeting and challenge")
def step_only_greeting(context: Any) -> None:
    said = context.part_said
    assert said.startswith(GREETING) and len(said) == len(GREETING) + CHALLENGE, said
