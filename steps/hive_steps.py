"""Steps for several hives on one test box: each "machine" is a hive on its own loopback
port, with its own state dir and model dir."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from behave import given, then, when

from steps.support import processes
from steps.support.jobs import submit


def _hives(context: Any) -> dict[str, dict[str, Any]]:
    key = context.env.get("RBEE_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = httpx.get(f"{context.queen_url}/hives", headers=headers, timeout=10).json()
    return {h["name"]: h for h in answer["hives"]}


def _hive_home(context: Any, name: str) -> Path:
    return context.home / "hives" / name


@given("a queen is running with a heartbeat of {seconds:g} seconds")
def step_queen_heartbeat(context: Any, seconds: float) -> None:
    context.queen = processes.start_queen(
        context.env, context.home, context.port, "--heartbeat", str(seconds)
    )
    context.started.append(context.queen)
    context.heartbeat = seconds


def _start_hive(
    context: Any,
    name: str,
    *extra: str,
    prefix: tuple[str, ...] = (),
    env_extra: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start hive ``name``; ``prefix`` goes before its command (e.g. ``taskset -c 0``, which its
    workers inherit) and ``env_extra`` into its environment (and so its workers')."""
    home = _hive_home(context, name)
    (home / "models").mkdir(parents=True)
    # Its own model dir, with the shared converted copy of the default model linked in (a
    # machine that converted it before): the one-off conversion is not what is tested here.
    converted = Path(context.models_dir) / "converted"
    if converted.exists():
        (home / "models" / "converted").symlink_to(converted)
    env = context.env | {"RBEE_HOME": str(home), "RBEE_MODELS_DIR": str(home / "models")}
    env |= env_extra or {}
    log = open(home / "hive.test.log", "ab")  # noqa: SIM115 (lives with the process)
    process = subprocess.Popen(
        [
            *prefix,
            *processes.command("rbee-hive"),
            "--queen-url",
            context.queen_url,
            "--port",
            "0",
            "--name",
            name,
            "--heartbeat",
            str(getattr(context, "heartbeat", 2.0)),
            *extra,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    context.started.append(process)
    context.hive_processes = {**getattr(context, "hive_processes", {}), name: process}
    return process


def _wait_state(context: Any, name: str, state: str, timeout: float) -> None:
    processes.wait_until(
        lambda: _hives(context).get(name, {}).get("state") == state,
        timeout,
        f"hive {name} to be {state}",
    )


@given('a hive "{name}" joins the queen')
def step_hive_joins(context: Any, name: str) -> None:
    _start_hive(context, name)
    _wait_state(context, name, "ready", 60)


@given('a hive "{name}" with a CPU memory limit of {limit} joins the queen')
def step_hive_joins_limited(context: Any, name: str, limit: str) -> None:
    _start_hive(context, name, "--cpu-memory-limit", limit)
    _wait_state(context, name, "ready", 60)


@when('hive "{name}" is killed with SIGKILL')
def step_kill_hive(context: Any, name: str) -> None:
    process = context.hive_processes[name]
    process.kill()
    process.wait()
    context.killed_at = time.monotonic()


@then('hive "{name}" becomes {state} within {seconds:d} seconds')
def step_hive_becomes(context: Any, name: str, state: str, seconds: int) -> None:
    _wait_state(context, name, state, seconds)


@then('hive "{name}" is in state {state}')
def step_hive_is(context: Any, name: str, state: str) -> None:
    assert _hives(context)[name]["state"] == state, _hives(context)[name]


@then('hive list shows "{name}" as {state} with its devices')
def step_hive_list_shows(context: Any, name: str, state: str) -> None:
    out = context.result.stdout
    block = out[out.index(f"{name}  ") :]
    assert block.startswith(f"{name}  {state}  http://127.0.0.1:"), out
    assert "devices: cpu (" in block.splitlines()[1], out


@then('no process of hive "{name}" is left running')
def step_no_hive_process(context: Any, name: str) -> None:
    home = _hive_home(context, name)
    processes.wait_until(
        lambda: not processes.rbee_processes(home), 20, f"every process of hive {name} to exit"
    )


@then('hive "{name}" is still running')
def step_hive_running(context: Any, name: str) -> None:
    assert context.hive_processes[name].poll() is None
    assert processes.rbee_processes(_hive_home(context, name))


@then('hive "{name}" runs a worker for "{model}"')
def step_hive_worker(context: Any, name: str, model: str) -> None:
    processes.wait_until(
        lambda: any(w["model"] == model for w in _hives(context)[name]["workers"]),
        10,
        f"hive {name} to report its worker",
    )


@then('the queen lists the worker of "{model}" on hive "{name}" at once')
def step_queen_lists_worker(context: Any, model: str, name: str) -> None:
    # One look, no waiting: the hive's next heartbeat must not be what tells the queen.
    workers = httpx.get(f"{context.queen_url}/workers", timeout=10).json()["workers"]
    assert any(w["model"] == model and w["hive"] == name for w in workers), workers


@then('hive "{name}" runs no worker within {seconds:d} seconds')
def step_hive_no_worker(context: Any, name: str, seconds: int) -> None:
    def gone() -> bool:
        found = processes.rbee_processes(_hive_home(context, name)).values()
        return not _hives(context)[name]["workers"] and not any("rbee_worker" in c for c in found)

    processes.wait_until(gone, seconds, f"hive {name} to stop its worker, and it to exit")


@when('I start a long job pinned to hive "{name}" and it is streaming tokens')
def step_long_job(context: Any, name: str) -> None:
    job = submit(
        context,
        prompt="Write a very long story about bees.",
        max_tokens=900,
        temperature=0,
        hive=name,
    )
    context.job = job
    url = f"{context.queen_url}/jobs/{job['job_id']}"
    processes.wait_until(lambda: httpx.get(url).json()["tokens"] > 2, 120, "tokens to flow")


@then('the job ends with an error event naming "{text}" within {seconds:d} seconds')
def step_job_error(context: Any, text: str, seconds: int) -> None:
    url = f"{context.queen_url}/jobs/{context.job['job_id']}"
    processes.wait_until(
        lambda: httpx.get(url).json()["state"] == "failed", seconds, "the job to fail"
    )
    record = httpx.get(url).json()
    assert text in record["result"]["message"], record["result"]


@when('I register a hive named "{name}" from {url}')
def step_register(context: Any, name: str, url: str) -> None:
    context.response = httpx.post(
        f"{context.queen_url}/hives/register", json={"name": name, "url": url}
    )


@when('a heartbeat comes from a hive named "{name}" that never registered')
def step_unknown_heartbeat(context: Any, name: str) -> None:
    context.response = httpx.post(
        f"{context.queen_url}/hives/heartbeat", json={"name": name, "url": "http://127.0.0.1:1"}
    )


@then('no process of hive "localhost" started by the queen is left running')
def step_no_local_hive(context: Any) -> None:
    processes.wait_until(
        lambda: not _local_leftovers(context), 20, "the queen's hive and its workers to exit"
    )


def _local_leftovers(context: Any) -> list[int]:
    """Processes with exactly the queen's RBEE_HOME (not a joined hive's own state dir)."""
    marker = f"RBEE_HOME={context.home}".encode()
    found = []
    for pid in processes.rbee_processes(context.home):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            found.append(pid)
    return found


@when('I stop the worker of hive "{name}" with rbee-keeper')
def step_stop_worker(context: Any, name: str) -> None:
    worker = _hives(context)[name]["workers"][0]["id"]
    context.execute_steps(f"When I run rbee-keeper worker stop {worker}")
