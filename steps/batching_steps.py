"""Steps for continuous batching: many jobs on one worker at once, and its bounded KV cache."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from behave import given, then, when

from steps.support import processes
from steps.support.jobs import submit
from steps.support.sse import Stream, read_stream


def _post(context: Any, body: dict[str, Any]) -> dict[str, Any]:
    return submit(context, **body)


def _stream(context: Any, job: dict[str, Any]) -> Stream:
    return read_stream(f"{context.queen_url}{job['sse_url']}")


def _record(context: Any, job: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = httpx.get(
        f"{context.queen_url}/jobs/{job['job_id']}", timeout=10
    ).json()
    return record


def _run_at_once(context: Any, bodies: list[dict[str, Any]]) -> list[Stream]:
    """Submit every job, then read all their streams in parallel."""
    jobs = [_post(context, body) for body in bodies]
    with ThreadPoolExecutor(len(jobs)) as pool:
        streams = list(pool.map(lambda job: _stream(context, job), jobs))
    context.batch_jobs = jobs
    return streams


@given("workers have a KV cache of {tokens:d} tokens")
def step_kv_cache(context: Any, tokens: int) -> None:
    context.env["RBEE_KV_CACHE"] = f"{tokens} tokens"


@given("workers run at most {n:d} job at once")
@given("workers run at most {n:d} jobs at once")
def step_max_batch(context: Any, n: int) -> None:
    context.env["RBEE_MAX_BATCH"] = str(n)


@given("workers run on the {backend} backend in {dtype}")
def step_backend_dtype(context: Any, backend: str, dtype: str) -> None:
    context.env["RBEE_BACKEND"] = backend
    context.env["RBEE_TORCH_DTYPE"] = dtype


@given("workers run on the {backend} backend with a {kv_type} KV cache")
def step_backend_kv_type(context: Any, backend: str, kv_type: str) -> None:
    context.env["RBEE_BACKEND"] = backend
    context.env["RBEE_KV_TYPE"] = kv_type


@then("the {backend} worker holds less than {mib:d} MiB resident")
def step_worker_rss(context: Any, backend: str, mib: int) -> None:
    workers = httpx.get(f"{context.queen_url}/workers", timeout=10).json()["workers"]
    pids = [w["pid"] for w in workers if w["backend"] == backend and w.get("pid")]
    assert pids, f"no {backend} worker with a pid: {workers}"
    status = Path(f"/proc/{pids[0]}/status").read_text()
    rss_kib = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
    )
    assert rss_kib < mib * 1024, f"the {backend} worker holds {rss_kib / 1024:.1f} MiB resident"


@given("workers run on the {backend} backend")
def step_backend(context: Any, backend: str) -> None:
    context.env["RBEE_BACKEND"] = backend


@when("I run each of these jobs alone, then all of them at once:")
def step_alone_then_together(context: Any) -> None:
    bodies = []
    for row in context.table:
        body: dict[str, Any] = {
            "prompt": row["prompt"],
            "temperature": float(row["temperature"]),
            "max_tokens": int(row["max_tokens"]),
        }
        if row["seed"]:
            body["seed"] = int(row["seed"])
        bodies.append(body)
    context.alone = [_stream(context, _post(context, body)).text for body in bodies]
    context.together = [stream.text for stream in _run_at_once(context, bodies)]


@then("every job answers the same text at once as alone")
def step_same_text(context: Any) -> None:
    assert all(context.alone), context.alone
    assert context.together == context.alone, json.dumps(
        {"alone": context.alone, "together": context.together}, indent=1
    )


@then("the jobs run at once were all served by one worker, at the same time")
def step_one_worker(context: Any) -> None:
    records = [_record(context, job) for job in context.batch_jobs]
    assert len({r["worker"] for r in records}) == 1, records
    # Every job had its first token before any job of the batch finished: they overlapped.
    first_end = min(r["finished_at"] for r in records)
    assert all(r["first_token_at"] < first_end for r in records), records


@when('I run the prompt "{prompt}" alone at temperature 0 with at most {n:d} tokens')
def step_alone(context: Any, prompt: str, n: int) -> None:
    context.prompt_body = {"prompt": prompt, "temperature": 0, "max_tokens": n}
    context.alone_text = _stream(context, _post(context, context.prompt_body)).text
    assert context.alone_text


@when("I start {n:d} jobs of that prompt at once, plus a long job")
def step_start_with_long(context: Any, n: int) -> None:
    context.long_job = _post(
        context, {"prompt": "Write a very long story about bees.", "max_tokens": 900}
    )
    context.batch_jobs = [_post(context, context.prompt_body) for _ in range(n)]
    context.pool = ThreadPoolExecutor(n)
    context.add_cleanup(context.pool.shutdown)
    context.batch_streams = [
        context.pool.submit(_stream, context, job) for job in context.batch_jobs
    ]


@when("the long job is streaming tokens")
def step_long_streaming(context: Any) -> None:
    processes.wait_until(
        lambda: _record(context, context.long_job)["tokens"] > 2, 120, "the long job's tokens"
    )


@when("I cancel the long job with DELETE")
def step_cancel_long(context: Any) -> None:
    url = f"{context.queen_url}/jobs/{context.long_job['job_id']}"
    assert httpx.delete(url, timeout=30).status_code == 200


@then('the long job is "{state}"')
def step_long_state(context: Any, state: str) -> None:
    processes.wait_until(
        lambda: _record(context, context.long_job)["state"] == state, 30, f"the long job {state}"
    )


@then("the {n:d} jobs answer what the prompt answered alone")
def step_batch_answers(context: Any, n: int) -> None:
    texts = [future.result(timeout=300).text for future in context.batch_streams]
    assert texts == [context.alone_text] * n, (context.alone_text, texts)


@when("I submit {n:d} jobs of {tokens:d} tokens at once")
def step_submit_sized(context: Any, n: int, tokens: int) -> None:
    # A stop-free raw prompt that keeps a small model talking, greedy so it is repeatable;
    # ignore_eos is not an rbee option, so the check below is on what the worker reports.
    body = {"prompt": "Count: 1, 2, 3, 4,", "raw": True, "temperature": 0, "max_tokens": tokens}
    context.sized = _run_at_once(context, [body] * n)


@then("both jobs complete with {tokens:d} tokens each")
def step_sized_complete(context: Any, tokens: int) -> None:
    for stream in context.sized:
        end = stream.events[-1]
        assert end["event"] == "end" and end["data"]["outcome"] == "completed", end
        assert end["data"]["completion_tokens"] == tokens, end


def _first_and_second(context: Any) -> tuple[int, int]:
    """Indexes of the job the worker took first and the one that waited."""
    first, second = (_record(context, job) for job in context.batch_jobs)
    return (0, 1) if first["first_token_at"] <= second["first_token_at"] else (1, 0)


@then("the second job's first token came after the first job ended")
def step_waited(context: Any) -> None:
    records = [_record(context, job) for job in context.batch_jobs]
    first, second = (records[i] for i in _first_and_second(context))
    assert second["first_token_at"] >= first["finished_at"] - 0.05, (first, second)


@then('the second job narrated "{text}"')
def step_second_narrated(context: Any, text: str) -> None:
    first, second = (context.sized[i] for i in _first_and_second(context))
    assert any(text in n["message"] for n in second.narration), second.narration
    assert not any(text in n["message"] for n in first.narration), first.narration


@then('the job\'s stream narrates "{text}"')
def step_stream_narrates(context: Any, text: str) -> None:
    """Read the (still running) job's stream only until that narration arrives."""
    url = f"{context.queen_url}{context.job['sse_url']}"
    seen: list[str] = []
    with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=60)) as response:
        event = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "narration":
                seen.append(json.loads(line[5:])["message"])
                if text in seen[-1]:
                    return
    raise AssertionError(f"no narration with {text!r}: {seen}")
