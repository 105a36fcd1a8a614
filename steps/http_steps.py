"""Steps that talk HTTP to the queen directly, as curl or a script would."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from behave import given, then, when

from steps.support import processes
from steps.support.jobs import submit
from steps.support.sse import Stream, read_stream


@given("a queen is running")
def step_queen_running(context: Any) -> None:
    context.queen = processes.start_queen(context.env, context.home, context.port)
    context.started.append(context.queen)


@given("no queen is running on my port")
def step_no_queen(context: Any) -> None:
    assert not processes.healthy(context.queen_url), f"something answers at {context.queen_url}"


@given("another program holds my port without speaking HTTP")
def step_port_taken(context: Any) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", context.port))
    holder.listen(1)  # accepts connections into its backlog but never answers
    context.add_cleanup(holder.close)


@when("the queen is killed with SIGKILL")
def step_kill_queen(context: Any) -> None:
    context.queen.kill()
    context.queen.wait()


@when('I POST to "{path}":')
def step_post(context: Any, path: str) -> None:
    context.response = httpx.post(
        f"{context.queen_url}{path}",
        content=context.text.encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


@when('I GET "{path}"')
def step_get(context: Any, path: str) -> None:
    context.response = httpx.get(f"{context.queen_url}{path}", timeout=30)


def _submit(context: Any, prompt: str, **fields: Any) -> dict[str, str]:
    job: dict[str, str] = submit(context, prompt=prompt, **fields)
    context.job = job
    return job


@when('I submit the prompt "{prompt}" at temperature 0')
def step_submit(context: Any, prompt: str) -> None:
    _submit(context, prompt, temperature=0)


@when('I submit the prompt "{prompt}" at temperature 0 with at most {n:d} tokens')
def step_submit_n(context: Any, prompt: str, n: int) -> None:
    _submit(context, prompt, temperature=0, max_tokens=n)


@when("I submit these prompts at temperature 0 without waiting:")
def step_submit_many(context: Any) -> None:
    context.jobs = {
        row["prompt"]: _submit(context, row["prompt"], temperature=0) for row in context.table
    }


@when("I read the job's stream to the end")
def step_read(context: Any) -> None:
    context.stream = read_stream(f"{context.queen_url}{context.job['sse_url']}")


@when("I read the job's stream again with Last-Event-ID {after:d}")
def step_read_again(context: Any, after: int) -> None:
    context.first_read = context.stream
    context.stream = read_stream(
        f"{context.queen_url}{context.job['sse_url']}", headers={"Last-Event-ID": str(after)}
    )
    context.after = after


@when("I read all their streams at the same time")
def step_read_all(context: Any) -> None:
    urls = {p: f"{context.queen_url}{job['sse_url']}" for p, job in context.jobs.items()}
    with ThreadPoolExecutor(len(urls)) as pool:
        futures = {p: pool.submit(read_stream, url) for p, url in urls.items()}
        context.streams = {p: f.result() for p, f in futures.items()}


@when("I GET the job's record")
def step_get_record(context: Any) -> None:
    context.response = httpx.get(f"{context.queen_url}/jobs/{context.job['job_id']}", timeout=30)


@when('I wait until the job is "{state}"')
def step_wait_state(context: Any, state: str) -> None:
    url = f"{context.queen_url}/jobs/{context.job['job_id']}"
    processes.wait_until(lambda: httpx.get(url).json()["state"] == state, 300, f"job {state}")


@then("the response status is {status:d}")
def step_status(context: Any, status: int) -> None:
    assert context.response.status_code == status, (
        f"expected {status}, got {context.response.status_code}: {context.response.text}"
    )


@then('the response\'s job_id starts with "{prefix}"')
def step_job_id(context: Any, prefix: str) -> None:
    assert context.response.json()["job_id"].startswith(prefix), context.response.text


@then("the response's sse_url is the job's stream URL")
def step_sse_url(context: Any) -> None:
    body = context.response.json()
    assert body["sse_url"] == f"/jobs/{body['job_id']}/stream", body
    # The URL works: its stream runs the job to the end.
    stream = read_stream(f"{context.queen_url}{body['sse_url']}")
    assert stream.events[-1]["event"] == "end", stream.events[-1]


@then('the record\'s state is "{state}"')
def step_record_state(context: Any, state: str) -> None:
    assert context.response.json()["state"] == state, context.response.text


@then('the record\'s text is "{text}"')
def step_record_text(context: Any, text: str) -> None:
    assert context.response.json()["text"] == text, context.response.text


@then('the record\'s result has finish_reason "{reason}"')
def step_record_reason(context: Any, reason: str) -> None:
    assert context.response.json()["result"]["finish_reason"] == reason, context.response.text


@then("the record's result counts more than 0 completion tokens")
def step_record_tokens(context: Any) -> None:
    assert context.response.json()["result"]["completion_tokens"] > 0, context.response.text


@then('the error\'s code is "{code}"')
def step_error_code(context: Any, code: str) -> None:
    assert context.response.json()["error"]["code"] == code, context.response.text


@then('the error names the field "{field}"')
def step_error_field(context: Any, field: str) -> None:
    assert context.response.json()["error"].get("field") == field, context.response.text


@then('the error\'s message mentions "{text}"')
def step_error_mentions(context: Any, text: str) -> None:
    assert text in context.response.json()["error"]["message"], context.response.text


@then("the queen is still healthy")
def step_still_healthy(context: Any) -> None:
    assert processes.healthy(context.queen_url)


def _narration_lines(stream: Stream) -> list[str]:
    return [f"[{n['actor']}] {n['message']}" for n in stream.narration]


@then('the stream\'s narration includes "{text}"')
def step_narration_includes(context: Any, text: str) -> None:
    lines = _narration_lines(context.stream)
    assert any(text in line for line in lines), "\n".join(lines)


@then('the stream\'s narration does not include "{text}"')
def step_narration_excludes(context: Any, text: str) -> None:
    lines = _narration_lines(context.stream)
    assert not any(text in line for line in lines), "\n".join(lines)


@then("the stream's narration includes, in order:")
def step_narration_order(context: Any) -> None:
    narration = context.stream.narration
    position = 0
    for row in context.table:
        while position < len(narration) and not (
            narration[position]["actor"] == row["actor"]
            and row["message"] in narration[position]["message"]
        ):
            position += 1
        assert position < len(narration), (
            f"missing, or out of order: [{row['actor']}] {row['message']}\n"
            + "\n".join(_narration_lines(context.stream))
        )
        position += 1


@then('the stream\'s text is "{text}"')
def step_stream_text(context: Any, text: str) -> None:
    assert context.stream.text == text, repr(context.stream.text)


@then('the stream\'s text contains "{text}"')
def step_stream_text_contains(context: Any, text: str) -> None:
    assert text in context.stream.text, repr(context.stream.text)


@then("the event ids are 1, 2, 3 and so on without gaps")
def step_ids(context: Any) -> None:
    ids = [e["id"] for e in context.stream.events]
    assert ids == list(range(1, len(ids) + 1)), ids


@then("every event's type is one of narration, token, end, error")
def step_types(context: Any) -> None:
    kinds = {e["event"] for e in context.stream.events}
    assert kinds <= {"narration", "token", "end", "error"}, kinds


@then("every event's data is a JSON object")
def step_json(context: Any) -> None:
    assert all(isinstance(e["data"], dict) for e in context.stream.events)


@then("every token event carries its text")
def step_token_text(context: Any) -> None:
    tokens = context.stream.of_type("token")
    assert tokens and all(isinstance(e["data"]["text"], str) for e in tokens)


@then('the last event is an end event with outcome "{outcome}"')
def step_last_end(context: Any, outcome: str) -> None:
    last = context.stream.events[-1]
    assert last["event"] == "end" and last["data"]["outcome"] == outcome, last


@then('the stream\'s last line is "{line}"')
def step_last_line(context: Any, line: str) -> None:
    lines = [x for x in context.stream.lines if x]
    assert lines[-1] == line, lines[-3:]


@then("the stream has more than {n:d} token events")
def step_token_count(context: Any, n: int) -> None:
    assert len(context.stream.of_type("token")) > n, len(context.stream.of_type("token"))


@then("the token events did not all arrive at once")
def step_spread(context: Any) -> None:
    times = [e["at"] for e in context.stream.of_type("token")]
    # Streamed, not buffered: the first token reached us before the last one was made.
    assert times[-1] > times[0], times


@then("the first event's id is {n:d}")
def step_first_id(context: Any, n: int) -> None:
    assert context.stream.events[0]["id"] == n, context.stream.events[0]


@then("the second read starts at event {n:d}")
def step_second_start(context: Any, n: int) -> None:
    assert context.stream.events[0]["id"] == n, context.stream.events[0]


@then("the second read is exactly the first read's events after event {n:d}")
def step_second_equals(context: Any, n: int) -> None:
    def strip(events: list[dict[str, Any]]) -> list[tuple[int, str, Any]]:
        return [(e["id"], e["event"], e["data"]) for e in events]

    assert strip(context.stream.events) == strip(
        [e for e in context.first_read.events if e["id"] > n]
    )


@then("every stream ends with an end event followed by [DONE]")
def step_all_end(context: Any) -> None:
    for prompt, stream in context.streams.items():
        assert stream.events[-1]["event"] == "end", (prompt, stream.events[-1])
        assert [x for x in stream.lines if x][-1] == "data: [DONE]", prompt


@then('the text of the stream for "{prompt}" is "{text}"')
def step_stream_for(context: Any, prompt: str, text: str) -> None:
    assert context.streams[prompt].text == text, repr(context.streams[prompt].text)


@then("the text of every stream equals its job's recorded text")
def step_each_own(context: Any) -> None:
    for prompt, job in context.jobs.items():
        record = httpx.get(f"{context.queen_url}/jobs/{job['job_id']}").json()
        assert record["request"]["prompt"] == prompt
        assert context.streams[prompt].text == record["text"], (prompt, record["text"])
    texts = [s.text for s in context.streams.values()]
    assert len(set(texts)) == len(texts), texts  # no stream got another job's tokens


@then("the queen still answers on my port")
def step_queen_answers(context: Any) -> None:
    assert processes.healthy(context.queen_url)


@then("no queen answers on my port")
def step_queen_gone(context: Any) -> None:
    assert not processes.healthy(context.queen_url)


@then("no rbee process is left running")
def step_no_leftovers(context: Any) -> None:
    processes.wait_until(
        lambda: not processes.rbee_processes(context.home),
        20,
        "every rbee process of this scenario to exit",
    )


@then("a worker process is running")
def step_worker_running(context: Any) -> None:
    found = processes.rbee_processes(context.home).values()
    assert any("rbee_worker" in cmd for cmd in found), list(found)


@given("streams send keep-alive comments after {seconds:g} seconds of silence")
def step_keepalive(context: Any, seconds: float) -> None:
    context.env["RBEE_SSE_KEEPALIVE"] = str(seconds)  # the queen, its hives and workers


@then("the stream carries keep-alive comments")
def step_has_keepalive(context: Any) -> None:
    comments = [line for line in context.stream.lines if line.startswith(":")]
    assert comments and all("keep-alive" in c for c in comments), context.stream.lines[:20]
