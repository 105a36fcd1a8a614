"""Steps for a hive that manages its memory: a second model, jobs pinned to a hive, and a
watch on how many workers ran at once."""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from behave import given, then, when

from steps.support import processes
from steps.support.jobs import auth, submit
from steps.support.placeholders import default_gguf, expand
from steps.support.sse import read_stream

LONG = "Write a very long story about bees, their queen and the keeper."


def _hive_home(context: Any, name: str) -> Path:
    return context.home / "hives" / name


def _hive(context: Any, name: str) -> dict[str, Any]:
    answer = httpx.get(f"{context.queen_url}/hives", headers=auth(context), timeout=10).json()
    found: dict[str, Any] = next(h for h in answer["hives"] if h["name"] == name)
    return found


@given('the default model\'s GGUF file is also at "{path}"')
def step_second_model(context: Any, path: str) -> None:
    Path(expand(context, path)).symlink_to(default_gguf())


@given('hive "{name}" joins the queen with "{options}"')
def step_hive_with_options(context: Any, name: str, options: str) -> None:
    home = _hive_home(context, name)
    (home / "models").mkdir(parents=True)
    env = context.env | {"RBEE_HOME": str(home), "RBEE_MODELS_DIR": str(home / "models")}
    log = open(home / "hive.test.log", "ab")  # noqa: SIM115 (lives with the process)
    process = subprocess.Popen(
        [
            *processes.command("rbee-hive"),
            *("--queen-url", context.queen_url, "--port", "0", "--name", name),
            *shlex.split(options),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    context.started.append(process)
    processes.wait_until(
        lambda: _hive(context, name).get("state") == "ready" if _listed(context, name) else False,
        60,
        f"hive {name} to be ready",
    )


def _listed(context: Any, name: str) -> bool:
    answer = httpx.get(f"{context.queen_url}/hives", headers=auth(context), timeout=10).json()
    return any(h["name"] == name for h in answer["hives"])


@given('I watch the worker processes of hive "{name}"')
def step_watch(context: Any, name: str) -> None:
    """Count the hive's worker processes every 50 ms until the scenario ends."""
    home, done = _hive_home(context, name), threading.Event()
    seen: list[Any] = [0, {}]  # the most at once, and what they were (for the message)

    def watch() -> None:
        while not done.is_set():
            found = processes.rbee_processes(home)
            running = [pid for pid, cmd in found.items() if "rbee_worker" in cmd]
            # One scan of /proc is not one instant (it takes tens of ms on a busy machine):
            # a worker that exited early in the scan and its successor, started later in
            # it with a higher pid, were both seen, never both alive. Count only those
            # still alive once the scan is over, and not a worker's own child (a fork
            # shows its parent's command line until it execs).
            if len(running) > 1:
                parents = {pid: processes.parent(pid) for pid in running}
                running = [
                    pid for pid in running if processes.alive(pid) and parents[pid] not in running
                ]
                if len(running) > seen[0]:
                    seen[1] = {p: (parents[p], found[p]) for p in running}
            seen[0] = max(seen[0], len(running))
            done.wait(0.05)

    threading.Thread(target=watch, daemon=True).start()
    context.most_workers = seen
    context.cleanups.append(done.set)


def _run_job(context: Any, model: str, hive: str, **fields: Any) -> None:
    fields = {"prompt": "Name the capital of France.", "temperature": 0, "max_tokens": 16} | fields
    context.job = submit(context, model=expand(context, model), hive=hive, **fields)
    context.job_submitted = time.monotonic()
    context.stream = read_stream(f"{context.queen_url}{context.job['sse_url']}")
    context.job_ended = time.monotonic()


@when('I run a job for "{model}" on hive "{hive}" and read its stream')
def step_run_job(context: Any, model: str, hive: str) -> None:
    _run_job(context, model, hive)


@when('I run a job for "{model}" on hive "{hive}" with keep_alive {seconds:g} and read its stream')
def step_run_job_keep(context: Any, model: str, hive: str, seconds: float) -> None:
    _run_job(context, model, hive, keep_alive=seconds)


@when('I run a job for "{model}" on hive "{hive}" with backend {backend} and read its stream')
def step_run_job_backend(context: Any, model: str, hive: str, backend: str) -> None:
    _run_job(context, model, hive, backend=backend)


def _record(context: Any, job_id: str) -> dict[str, Any]:
    url = f"{context.queen_url}/jobs/{job_id}"
    record: dict[str, Any] = httpx.get(url, headers=auth(context), timeout=10).json()
    return record


@when('I start a long job for "{model}" on hive "{hive}" and it is streaming tokens')
def step_long_job(context: Any, model: str, hive: str) -> None:
    job = submit(context, model=model, hive=hive, prompt=LONG, temperature=0, max_tokens=150)
    context.long_job = job
    processes.wait_until(
        lambda: _record(context, job["job_id"])["tokens"] > 2, 120, "the long job's tokens"
    )


@when("I wait {seconds:d} seconds")
def step_wait(context: Any, seconds: int) -> None:
    time.sleep(seconds)


@then('hive "{name}" runs one worker, for "{model}"')
def step_one_worker(context: Any, name: str, model: str) -> None:
    model = expand(context, model)
    processes.wait_until(
        lambda: [w["model"] for w in _hive(context, name)["workers"]] == [model],
        10,
        f"hive {name} to report one worker, for {model}",
    )
    running = [
        c
        for c in processes.rbee_processes(_hive_home(context, name)).values()
        if "rbee_worker" in c
    ]
    assert len(running) == 1, running


@then('hive "{name}" never ran two workers at once')
def step_never_two(context: Any, name: str) -> None:
    most, which = context.most_workers
    assert most == 1, f"{most} workers at once (pid: parent, command line): {which}"


@then("the long job completed before the second job's worker started")
def step_long_completed(context: Any) -> None:
    record = _record(context, context.long_job["job_id"])
    assert record["state"] == "completed", record
    assert record["tokens"] > 2
    second = _record(context, context.job["job_id"])
    assert second["state"] == "completed", second
    assert record["finished_at"] <= second["started_at"], (record, second)


@then('the job failed within {seconds:d} seconds with "{code}"')
def step_failed_fast(context: Any, seconds: int, code: str) -> None:
    record = _record(context, context.job["job_id"])
    assert record["state"] == "failed", record
    assert record["result"]["code"] == code, record["result"]
    took = context.job_ended - context.job_submitted
    assert took < seconds, f"it took {took:.1f} s to fail"


@then('the job\'s error says "{text}"')
def step_error_says(context: Any, text: str) -> None:
    message = _record(context, context.job["job_id"])["result"]["message"]
    assert expand(context, text) in message, message
