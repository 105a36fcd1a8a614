"""Steps of features/failover.feature: a client follows a job's stream while its worker,
its hive or the queen dies, and checks it got every event once and the answer the same job
gives alone."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

import httpx
from behave import then, when

from steps.support import processes
from steps.support.jobs import auth, submit
from steps.support.sse import Stream, follow_stream, read_stream

LONG = "Write a very long story about bees, their queen and the keeper."


def _follow(context: Any, **fields: Any) -> None:
    """Submit a job and follow its stream from a thread, reconnecting as a client does."""
    context.job_fields = {"prompt": LONG, **fields}
    context.job = submit(context, **context.job_fields)
    context.followed = Stream()
    url = f"{context.queen_url}{context.job['sse_url']}"

    def run() -> None:
        try:
            follow_stream(url, auth(context), patience=300, stream=context.followed)
        except AssertionError as exc:
            context.follow_error = exc

    context.follow_error = None
    context.follower = threading.Thread(target=run, daemon=True)
    context.follower.start()
    context.follows = [*getattr(context, "follows", []), (context.job, context.followed)]
    context.followers = [*getattr(context, "followers", []), context.follower]


@when("I submit a long greedy job of {n:d} tokens and follow its stream")
def step_follow_greedy(context: Any, n: int) -> None:
    _follow(context, temperature=0, max_tokens=n)


@when("I submit a sampled job of {n:d} tokens without a seed and follow its stream")
def step_follow_sampled(context: Any, n: int) -> None:
    _follow(context, temperature=0.8, max_tokens=n)


@when("I submit {count:d} long greedy jobs of {n:d} tokens and follow their streams")
def step_follow_many(context: Any, count: int, n: int) -> None:
    for i in range(count):
        _follow(context, temperature=0, max_tokens=n, prompt=f"{LONG} Part {i + 1}.")


def _tokens(stream: Stream) -> int:
    return sum(1 for e in list(stream.events) if e["event"] == "token")


@when("the job has streamed {n:d} tokens")
def step_streamed(context: Any, n: int) -> None:
    processes.wait_until(lambda: _tokens(context.followed) >= n, 120, f"{n} tokens")


@when("every job has streamed {n:d} tokens")
def step_all_streamed(context: Any, n: int) -> None:
    processes.wait_until(
        lambda: all(_tokens(s) >= n for _, s in context.follows), 180, f"{n} tokens each"
    )


def _job_worker(context: Any) -> dict[str, Any]:
    record = httpx.get(
        f"{context.queen_url}/jobs/{context.job['job_id']}", headers=auth(context), timeout=10
    ).json()
    workers = httpx.get(f"{context.queen_url}/workers", headers=auth(context), timeout=10)
    found: dict[str, Any] = next(
        w for w in workers.json()["workers"] if w["id"] == record["worker"]
    )
    return found


@then('the job runs on the worker with backend "{backend}"')
def step_runs_on(context: Any, backend: str) -> None:
    worker = _job_worker(context)
    assert worker["backend"] == backend, worker


@when("the job's worker is killed with SIGKILL")
def step_kill_job_worker(context: Any) -> None:
    worker = _job_worker(context)
    context.first_worker = worker
    os.kill(worker["pid"], signal.SIGKILL)


@when('hive "{name}" and its workers are killed with SIGKILL')
def step_kill_hive_tree(context: Any, name: str) -> None:
    process = context.hive_processes[name]
    home = context.home / "hives" / name
    pids = [process.pid, *processes.rbee_processes(home)]
    for pid in pids:  # the whole machine at once, as a power cut does
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


@when('hive "{name}" is sent SIGTERM')
def step_term_hive(context: Any, name: str) -> None:
    context.hive_processes[name].send_signal(signal.SIGTERM)


@when("I spawn a worker of the default model with the torch backend beside it")
def step_spawn_torch(context: Any) -> None:
    context.execute_steps(
        "When I run rbee-keeper worker spawn --model smollm2-135m --backend torch"
    )
    context.execute_steps("Then the keeper exits with code 0")


def _ended(context: Any, stream: Stream, seconds: int) -> None:
    processes.wait_until(
        lambda: not any(t.is_alive() for t in context.followers), seconds, "streams to end"
    )
    assert context.follow_error is None, context.follow_error
    assert stream.events, "no event"


@then("the stream I follow ends with an end event within {seconds:d} seconds")
def step_ends(context: Any, seconds: int) -> None:
    _ended(context, context.followed, seconds)
    last = context.followed.events[-1]
    assert last["event"] == "end", last
    assert last["data"]["outcome"] == "completed", last


@then("every stream I follow ends with an end event within {seconds:d} seconds")
def step_all_end(context: Any, seconds: int) -> None:
    for _, stream in context.follows:
        _ended(context, stream, seconds)
        last = stream.events[-1]
        assert last["event"] == "end" and last["data"]["outcome"] == "completed", last


@then('the stream I follow ends with an error "{code}" within {seconds:d} seconds')
def step_ends_error(context: Any, code: str, seconds: int) -> None:
    _ended(context, context.followed, seconds)
    last = context.followed.events[-1]
    assert last["event"] == "error" and last["data"]["code"] == code, last
    context.error = last["data"]


@then('the error names "{first}" and "{second}"')
def step_error_names(context: Any, first: str, second: str) -> None:
    message = context.error["message"]
    assert first in message and second in message, message


def _check_ids(stream: Stream) -> None:
    ids = [e["id"] for e in stream.events]
    assert ids == list(range(1, len(ids) + 1)), ids


@then("its event ids run from 1 without a gap or a repeat")
def step_ids(context: Any) -> None:
    _check_ids(context.followed)


@then('its narration says "{text}"')
def step_narration(context: Any, text: str) -> None:
    said = [n["message"] for n in context.followed.narration]
    assert any(text in m for m in said), said


def _alone(context: Any, job: dict[str, Any], stream: Stream, fields: dict[str, Any]) -> str:
    """The answer the same job gives run alone now, on a quiet worker (with the seed the
    queen gave it, for a sampled one)."""
    end = stream.events[-1]["data"]
    if fields.get("temperature", 0) > 0:
        assert isinstance(end.get("seed"), int), end
        fields = fields | {"seed": end["seed"]}
    again = submit(context, **fields)
    return read_stream(f"{context.queen_url}{again['sse_url']}", auth(context)).text


@then("its text is the answer of the same job run alone")
def step_same_as_alone(context: Any) -> None:
    alone = _alone(context, context.job, context.followed, context.job_fields)
    assert context.followed.text == alone, (context.followed.text, alone)


@then("every stream's ids run from 1 without a gap, and its text is the same job's alone")
def step_all_same(context: Any) -> None:
    for (job, stream), prompt in zip(context.follows, _prompts(context), strict=True):
        _check_ids(stream)
        fields = {
            "prompt": prompt,
            "temperature": 0,
            "max_tokens": context.job_fields["max_tokens"],
        }
        alone = _alone(context, job, stream, fields)
        assert stream.text == alone, (job["job_id"], stream.text, alone)


def _prompts(context: Any) -> list[str]:
    return [f"{LONG} Part {i + 1}." for i in range(len(context.follows))]


@then("its end event carries the seed the queen gave it")
def step_seed(context: Any) -> None:
    end = context.followed.events[-1]["data"]
    assert isinstance(end.get("seed"), int), end
    record = httpx.get(
        f"{context.queen_url}/jobs/{context.job['job_id']}", headers=auth(context), timeout=10
    ).json()
    assert record["request"]["seed"] == end["seed"], record["request"]


@then("the job's record names both runs, the first lost")
def step_runs(context: Any) -> None:
    record = httpx.get(
        f"{context.queen_url}/jobs/{context.job['job_id']}", headers=auth(context), timeout=10
    ).json()
    runs = record["runs"]
    assert len(runs) == 2, runs
    assert "error" in runs[0] and "error" not in runs[1], runs
    assert runs[1]["tokens_before"] > 0, runs


@when("I run rbee-keeper jobs attach with the job's id")
def step_attach_job(context: Any) -> None:
    context.execute_steps(f"When I run rbee-keeper jobs attach {context.job['job_id']}")


@then("stdout is the answer of the same job run alone")
def step_stdout_alone(context: Any) -> None:
    fields = context.job_fields
    again = submit(context, **fields)
    alone = read_stream(f"{context.queen_url}{again['sse_url']}", auth(context)).text
    out = context.result.stdout
    assert out == alone + "\n", (out, alone)
