"""Steps for durability at scale (features/durability.feature): many finished jobs read back
after a restart and paged through, damaged state files, full disks.

Full disks are real: a small tmpfs (mounted here, unmounted after the scenario; specs run as
root, in CI too) or a file-size limit on the queen, which its hive inherits (Python ignores
SIGXFSZ, so a write past the limit fails with EFBIG as it would for a real program).
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from behave import given, then, when

from steps.support import processes
from steps.support.jobs import auth, submit
from steps.support.sse import read_stream

DAMAGED = ".damaged-"
MB = 1_000_000


def _path(context: Any, relative: str) -> Path:
    return context.home / relative.replace("<port>", str(context.port))


def _get(context: Any, path: str) -> Any:
    response = httpx.get(f"{context.queen_url}{path}", headers=auth(context), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


# -- many jobs, read back ----------------------------------------------------------------


@when("I run {n:d} markov jobs of {tokens:d} tokens to their end")
def step_run_markov_jobs(context: Any, n: int, tokens: int) -> None:
    context.ran = []
    for i in range(n):
        job = submit(context, model="markov-demo", prompt=f"the queen {i}", max_tokens=tokens)
        stream = read_stream(f"{context.queen_url}{job['sse_url']}")
        assert stream.events[-1]["event"] == "end", stream.events[-1]
        context.ran.append(job["job_id"])
    first = context.ran[0]
    context.first_record = _get(context, f"/jobs/{first}")
    context.first_stream = read_stream(f"{context.queen_url}/jobs/{first}/stream").events


@when("I stop the queen")
def step_stop_queen(context: Any) -> None:
    httpx.post(f"{context.queen_url}/shutdown", json={}, headers=auth(context), timeout=10)
    context.queen.wait(60)


@then(
    "pages of {size:d} from GET /jobs list the {n:d} jobs newest first, each once, "
    "then no next page"
)
def step_pages(context: Any, size: int, n: int) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"?limit={size}" + (f"&before={cursor}" if cursor else "")
        page = _get(context, f"/jobs{query}")
        assert len(page["jobs"]) <= size, page
        seen.extend(j["job_id"] for j in page["jobs"])
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor, page
    assert seen == list(reversed(context.ran)), (seen, context.ran)
    assert pages == -(-n // size), pages


@then("the first job's record is as it was before the restart")
def step_first_record(context: Any) -> None:
    record = _get(context, f"/jobs/{context.ran[0]}")
    assert record == context.first_record, (record, context.first_record)
    assert record["state"] == "completed" and record["text"], record


@then("the first job's stream replays from its first event as before the restart")
def step_first_stream(context: Any) -> None:
    events = read_stream(f"{context.queen_url}/jobs/{context.ran[0]}/stream").events
    strip = [{k: e[k] for k in ("id", "event", "data")} for e in events]
    before = [{k: e[k] for k in ("id", "event", "data")} for e in context.first_stream]
    assert strip == before, (strip, before)
    assert strip[0]["id"] == 1 and strip[-1]["event"] == "end"


@then("the first job's stream after Last-Event-ID {after:d} starts at event {first:d}")
def step_first_resume(context: Any, after: int, first: int) -> None:
    url = f"{context.queen_url}/jobs/{context.ran[0]}/stream"
    events = read_stream(url, headers={"Last-Event-ID": str(after)}).events
    assert events[0]["id"] == first, events[0]
    assert len(events) == len(context.first_stream) - after


@then("GET /jobs?{query} lists {n:d} jobs")
def step_filtered(context: Any, query: str, n: int) -> None:
    page = _get(context, f"/jobs?{query}&limit=1000")
    assert len(page["jobs"]) == n, page
    assert page["next"] is None
    for name, _, value in (part.partition("=") for part in query.split("&")):
        assert all(j[name] == value for j in page["jobs"]), page


@then("stdout has {n:d} lines")
def step_lines(context: Any, n: int) -> None:
    lines = context.result.stdout.splitlines()
    assert len(lines) == n, context.result.stdout


# -- damaged state files -----------------------------------------------------------------


@given('the file "{relative}" is 100 random bytes')
@when('the file "{relative}" is overwritten with 100 random bytes')
def step_random_bytes(context: Any, relative: str) -> None:
    path = _path(context, relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    context.damaged_bytes = os.urandom(100)
    path.write_bytes(context.damaged_bytes)
    for suffix in ("-wal", "-shm"):  # as if the file alone had been written over
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@then('the log "{log}" warns that "{relative}" is damaged and names where it went')
def step_warns_damaged(context: Any, log: str, relative: str) -> None:
    text = _path(context, log).read_text(errors="replace")
    path = _path(context, relative)
    moved = [p for p in path.parent.iterdir() if p.name.startswith(path.name + DAMAGED)]
    assert len(moved) == 1, list(path.parent.iterdir())
    line = next((ln for ln in text.splitlines() if f"{path} is damaged" in ln), None)
    assert line is not None, text[-3000:]
    assert f"moved it to {moved[0]}" in line and "started a fresh one" in line, line
    assert "Traceback" not in text, text[-3000:]


@then('the damaged "{relative}" is kept, as it was, beside the fresh one')
def step_kept(context: Any, relative: str) -> None:
    path = _path(context, relative)
    (moved,) = [p for p in path.parent.iterdir() if p.name.startswith(path.name + DAMAGED)]
    assert moved.read_bytes() == context.damaged_bytes
    assert path.exists() and path.read_bytes()[:16] == b"SQLite format 3\0"


@then('the log "{log}" says "{text}"')
def step_log_says(context: Any, log: str, text: str) -> None:
    content = _path(context, log).read_text(errors="replace")
    assert text in content, content[-3000:]


@then('the log "{log}" says "{text}" within {seconds:d} seconds')
def step_log_says_within(context: Any, log: str, text: str, seconds: int) -> None:
    path = _path(context, log)
    processes.wait_until(lambda: text in path.read_text(errors="replace"), seconds, repr(text))


# -- full disks --------------------------------------------------------------------------


def _mount_small(context: Any, folder: Path, mb: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, f"cannot mount a tmpfs at {folder}: {mounted.stderr}"
    context.cleanups.append(
        lambda: subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
    )


@given("the model cache is on a {mb:d} MB file system")
def step_small_cache(context: Any, mb: int) -> None:
    folder = context.home / "small-models"
    _mount_small(context, folder, mb)
    context.env["RBEE_MODELS_DIR"] = str(folder)
    context.models_dir = str(folder)


@given("the state dir is on a {mb:d} MB file system")
def step_small_state(context: Any, mb: int) -> None:
    _mount_small(context, context.home / "state", mb)


@when("the state dir's file system is full")
def step_fill_state(context: Any) -> None:
    filler = context.home / "state" / "filler"
    block = b"\0" * (1 << 16)
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        with contextlib.suppress(OSError):
            out.close()
    context.filler = filler


@when("I free the state dir's file system")
def step_free_state(context: Any) -> None:
    context.filler.unlink()


@given("a queen is running under a file-size limit of {mb:d} MB")
def step_queen_limited(context: Any, mb: int) -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (mb * MB, mb * MB))

    log = open(context.home / f"queen-{context.port}.test.log", "ab")  # noqa: SIM115
    context.queen = subprocess.Popen(
        [*processes.command("queen-rbee"), "--port", str(context.port)],
        env=context.env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        preexec_fn=limit,
    )
    context.started.append(context.queen)
    deadline = time.monotonic() + 60
    while not processes.healthy(context.queen_url):
        assert context.queen.poll() is None, f"queen-rbee exited with {context.queen.returncode}"
        assert time.monotonic() < deadline, "the queen did not become healthy"
        time.sleep(0.1)
