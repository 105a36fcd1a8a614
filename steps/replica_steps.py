"""Steps for replicas and fair waiting (features/replicas.feature): many jobs of one model
at once over two hives, a model kept loaded by its min_replicas, and jobs served in order."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from behave import then, when

from steps.hive_steps import _hives
from steps.support.jobs import DEFAULT_MODEL, auth, submit
from steps.support.sse import Stream, read_stream

__all__: list[str] = []

PROMPT = "Write a short poem about bees and their hive."


def _record(context: Any, job: dict[str, Any]) -> dict[str, Any]:
    url = f"{context.queen_url}/jobs/{job['job_id']}"
    record: dict[str, Any] = httpx.get(url, headers=auth(context), timeout=10).json()
    return record


def _read_all(context: Any, jobs: list[dict[str, Any]]) -> list[Stream]:
    def read(job: dict[str, Any]) -> Stream:
        return read_stream(f"{context.queen_url}{job['sse_url']}", auth(context), timeout=600)

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(read, jobs))


def _worker_hives(context: Any) -> dict[str, str]:
    """Worker id -> its hive, as the queen lists them now."""
    return {w["id"]: name for name, h in _hives(context).items() for w in h["workers"]}


@when(
    "I submit {n:d} sampled jobs of {tokens:d} tokens at once, "
    "each with a keep-alive of {s:d} seconds"
)
def step_sampled_at_once(context: Any, n: int, tokens: int, s: int) -> None:
    bodies = [
        {"prompt": PROMPT, "max_tokens": tokens, "temperature": 0.8, "seed": i, "keep_alive": s}
        for i in range(n)
    ]
    with ThreadPoolExecutor(n) as pool:  # at once: none waits for another's answer
        context.jobs = list(pool.map(lambda body: submit(context, **body), bodies))
    context.streams = _read_all(context, context.jobs)
    # Right away, before any worker idles past its keep-alive.
    context.worker_hives = _worker_hives(context)
    context.records = [_record(context, job) for job in context.jobs]


@then("every one of the jobs completed")
def step_all_completed(context: Any) -> None:
    for record in context.records:
        assert record["state"] == "completed", record


@then('one job narrated starting a second worker of "{model}" on the hive without one')
def step_replica_narrated(context: Any, model: str) -> None:
    said = [n["message"] for s in context.streams for n in s.narration]
    starts = [m for m in said if f"starting a second worker of {model} on" in m]
    assert len(starts) == 1, starts or said
    # "all 4 slots of worker-… on h1 are busy and 12 jobs wait: starting a second worker of
    # smollm2-135m on h2"
    found = re.search(
        r"slots of \S+ on (\S+) are busy and \d+ jobs? waits?: .* on (\S+)$", starts[0]
    )
    assert found and found[1] != found[2], starts[0]
    context.replica_hive = found[2]


@then("the jobs ran on two workers, one on each hive")
def step_two_workers(context: Any) -> None:
    served: dict[str, int] = {}
    for record in context.records:
        served[record["worker"]] = served.get(record["worker"], 0) + 1
    assert len(served) == 2, served
    hives = {context.worker_hives.get(w) for w in served}
    assert hives == {"h1", "h2"}, (served, context.worker_hives)


@then("the replica's hive runs no worker within {seconds:d} seconds")
def step_replica_gone(context: Any, seconds: int) -> None:
    deadline = time.monotonic() + seconds
    while _hives(context)[context.replica_hive]["workers"]:
        assert time.monotonic() < deadline, _hives(context)[context.replica_hive]
        time.sleep(0.5)


@when("I run a job with a keep-alive of {s:d} second")
def step_run_keep_alive(context: Any, s: int) -> None:
    job = submit(context, prompt="Hi", max_tokens=3, keep_alive=s)
    _read_all(context, [job])
    context.job_record = _record(context, job)
    assert context.job_record["state"] == "completed", context.job_record


@then('hive "{name}" still runs the job\'s worker {seconds:d} seconds later')
def step_still_runs(context: Any, name: str, seconds: int) -> None:
    time.sleep(seconds)
    workers = _hives(context)[name]["workers"]
    assert [w["id"] for w in workers] == [context.job_record["worker"]], workers
    assert workers[0]["keep_alive"] == -1, workers  # pinned: neither idled out nor evicted


@when("I submit {n:d} jobs of {tokens:d} tokens one after another")
def step_one_after_another(context: Any, n: int, tokens: int) -> None:
    context.jobs = []
    for i in range(n):
        body = {"prompt": f"Count to {10 + i}.", "max_tokens": tokens, "temperature": 0}
        context.jobs.append(submit(context, model=DEFAULT_MODEL, **body))
        time.sleep(0.2)  # submitted in a known order
    context.streams = _read_all(context, context.jobs)
    context.records = [_record(context, job) for job in context.jobs]


@then("the jobs started in the order they were submitted")
def step_started_in_order(context: Any) -> None:
    started = [r["started_at"] for r in context.records]
    assert all(r["state"] == "completed" for r in context.records), context.records
    assert started == sorted(started), started


@then('the last job narrated "{text}"')
def step_last_narrated(context: Any, text: str) -> None:
    said = [n["message"] for n in context.streams[-1].narration]
    assert any(text in m for m in said), said
