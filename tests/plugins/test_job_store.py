"""The queen's job store on a real SQLite file: records read back whole, pages newest first,
start-up that reads only unfinished jobs, the retention purge, a write that fails and is
retried, a damaged file moved aside, and the registry that keeps memory to the live jobs."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path

import pytest

from rbee_core.errors import InvalidRequest, UnknownJob
from rbee_core.events import EventType
from rbee_core.job_registry import JobRegistry
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job, JobState
from rbee_core.sqlite_files import DAMAGED
from rbee_queen.job_store import MAX_PAGE, JobStore, decode_cursor, encode_cursor

WEEK = 7 * 24 * 3600.0


def finished(model: str = "m", created_at: float | None = None, text: str = "Hi.") -> Job:
    job = Job(request=JobRequest(model=model, prompt="hello"))
    if created_at is not None:
        job.created_at = created_at
    job.emit(EventType.NARRATION, {"actor": "queen-rbee", "action": "a", "message": "m"})
    job.mark_running("worker-1")
    job.emit(EventType.TOKEN, {"text": text})
    end = {"prompt_tokens": 50, "completion_tokens": 1, "cached_tokens": 40}
    job.emit(EventType.END, {"outcome": "completed", "finish_reason": "stop", **end})
    return job


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "queen-jobs.sqlite", WEEK)


def test_a_finished_job_reads_back_whole(store: JobStore) -> None:
    job = finished(text="Paris.")
    store.save(job)
    back = store.get(job.id)
    assert back is not None and back is not job
    assert back.summary() == job.summary()
    # The end event's counts, the prompt tokens taken from the worker's cache among them.
    assert back.summary()["result"]["cached_tokens"] == 40
    assert [(e.id, e.type, e.data) for e in back.log.events] == [
        (e.id, e.type, e.data) for e in job.log.events
    ]
    assert back.log.closed
    assert store.get("job-nope") is None
    assert store.get("x" * 500) is None


def test_pages_are_newest_first_and_the_cursor_walks_the_rest(store: JobStore) -> None:
    jobs = [finished(created_at=1000.0 + i // 2) for i in range(25)]  # ties on created_at
    for job in jobs:
        store.save(job)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        records, cursor = store.page(limit=7, before=cursor)
        seen.extend(r["job_id"] for r in records)
        pages += 1
        if cursor is None:
            break
    assert pages == 4
    assert len(seen) == len(set(seen)) == 25
    newest_first = sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)
    assert seen == [j.id for j in newest_first]
    first, _ = store.page(limit=1)
    assert first == [newest_first[0].summary()]  # the same record GET /jobs/{id} gives


def test_pages_filter_by_state_and_model(store: JobStore) -> None:
    store.save(finished(model="a"))
    store.save(finished(model="b"))
    failed = Job(request=JobRequest(model="a", prompt="x"))
    failed.emit(EventType.ERROR, {"code": "worker_lost", "message": "gone"})
    store.save(failed)
    by_model, _ = store.page(model="a")
    assert {r["model"] for r in by_model} == {"a"} and len(by_model) == 2
    by_state, cursor = store.page(state="failed")
    assert [r["job_id"] for r in by_state] == [failed.id] and cursor is None
    both, _ = store.page(state="completed", model="b")
    assert len(both) == 1 and both[0]["model"] == "b"


def test_a_bad_cursor_names_the_parameter() -> None:
    for bad in ("nope", "!!", encode_cursor(1.0, "x")[:-3], "W10", "WyJhIiwiYiJd"):
        with pytest.raises(InvalidRequest) as caught:
            decode_cursor(bad)
        assert caught.value.to_dict()["error"]["field"] == "before"
    assert decode_cursor(encode_cursor(12.5, "job-1")) == (12.5, "job-1")


def test_listing_uses_the_indexes(store: JobStore) -> None:
    plans = {
        "all": "SELECT id FROM jobs WHERE (created_at, id) < (?, ?) "
        "ORDER BY created_at DESC, id DESC LIMIT 50",
        "state": "SELECT id FROM jobs WHERE state = ? AND (created_at, id) < (?, ?) "
        "ORDER BY created_at DESC, id DESC LIMIT 50",
        "purge": "SELECT id FROM jobs WHERE finished_at < ? ORDER BY finished_at LIMIT 10",
    }
    for name, query in plans.items():
        args = (1.0,) if name == "purge" else (1.0, "x") if name == "all" else ("a", 1.0, "x")
        plan = " ".join(row[3] for row in store._db.execute(f"EXPLAIN QUERY PLAN {query}", args))
        assert "USING" in plan and "INDEX" in plan and "TEMP B-TREE" not in plan, (name, plan)


def test_start_up_reads_back_unfinished_jobs_with_the_events_their_clients_saw(
    tmp_path: Path,
) -> None:
    path = tmp_path / "queen-jobs.sqlite"
    first = JobStore(path, WEEK)
    done = finished()
    first.save(done)
    running = Job(request=JobRequest(model="m", prompt="long", seed=7))
    first.follow(running)
    first.save(running)
    running.mark_running("worker-9")
    running.runs.append({"worker": "worker-9", "hive": "h", "tokens_before": 0})
    first.save(running)
    running.emit(EventType.NARRATION, {"actor": "queen-rbee", "action": "x", "message": "m"})
    for piece in ("The", " capital", " is"):
        running.emit(EventType.TOKEN, {"text": piece})
    first.close()  # the queen dies: no finish

    second = JobStore(path, WEEK)
    assert second.count == 2
    (back,) = second.unfinished()
    assert back.id == running.id and back.state is JobState.RUNNING
    assert (back.text, back.tokens) == ("The capital is", 3)
    assert [e.id for e in back.log.events] == [1, 2, 3, 4]
    assert back.request.seed == 7
    assert back.runs == running.runs
    again = second.get(done.id)
    assert again is not None and again.text == "Hi."


def test_an_unfinished_job_whose_events_have_a_gap_fails_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "queen-jobs.sqlite"
    first = JobStore(path, WEEK)
    running = Job(request=JobRequest(model="m", prompt="long"))
    first.follow(running)
    first.save(running)
    for piece in ("a", "b", "c"):
        running.emit(EventType.TOKEN, {"text": piece})
    first._db.execute("DELETE FROM live_events WHERE id = 2")  # a write that failed
    first.close()

    second = JobStore(path, WEEK)
    assert second.unfinished() == []
    back = second.get(running.id)
    assert back is not None and back.state is JobState.FAILED
    assert back.result["code"] == "queen_restarted"
    assert "running" in back.result["message"] or "queued" in back.result["message"]
    assert JobStore(path, WEEK).unfinished() == []  # failed once, for good


def test_a_finished_job_keeps_its_events_in_its_log_and_none_live(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "queen-jobs.sqlite", WEEK)
    job = Job(request=JobRequest(model="m", prompt="x"))
    store.follow(job)
    store.save(job)
    job.emit(EventType.TOKEN, {"text": "Hi."})
    job.emit(EventType.END, {"outcome": "completed"})
    store.save(job)
    assert store._db.execute("SELECT count(*) FROM live_events").fetchone()[0] == 0
    back = store.get(job.id)
    assert back is not None and [e.type for e in back.log.events] == [
        EventType.TOKEN,
        EventType.END,
    ]


def test_the_purge_forgets_expired_records_in_batches(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "queen-jobs.sqlite", 60.0)
    old = [finished() for _ in range(5)]
    for job in old:
        job.finished_at = time.time() - 3600
        store.save(job)
    fresh = finished()
    store.save(fresh)
    live = Job(request=JobRequest(model="m", prompt="x"))
    store.save(live)  # unfinished: never purged
    assert store.prune(batch=3) == 3
    assert store.prune(batch=3) == 2
    assert store.prune(batch=3) == 0
    assert all(store.get(j.id) is None for j in old)
    assert store.get(fresh.id) is not None and store.get(live.id) is not None
    events = store._db.execute("SELECT count(*) FROM job_events").fetchone()[0]
    assert events == 1  # the purged jobs' event logs went with them


def test_a_failed_write_is_kept_served_and_retried(
    store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.save(finished())
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite: "database or disk is full"
    jobs = [finished(text="x" * 20_000) for _ in range(3)]
    with caplog.at_level(logging.WARNING):
        for job in jobs:
            store.save(job)  # never raises: a job's stream must not break
    assert store.unsaved == 3
    warnings = [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once, not once per job
    assert "full" in warnings[0] and str(store.path) in warnings[0]
    assert store.get(jobs[0].id) is jobs[0]  # served from memory meanwhile
    assert store.retry() == 3
    store._db.execute("PRAGMA max_page_count = 1073741823")
    with caplog.at_level(logging.WARNING):
        assert store.retry() == 0
    assert any("written to" in r.getMessage() for r in caplog.records)
    fresh = JobStore(store.path, WEEK)
    assert all(fresh.get(job.id) is not None for job in jobs)


def test_a_damaged_file_is_moved_aside_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "queen-jobs.sqlite"
    store = JobStore(path, WEEK)
    store.save(finished())
    store.close()
    path.write_bytes(os.urandom(100))
    Path(f"{path}-wal").write_bytes(os.urandom(100))
    with caplog.at_level(logging.WARNING):
        fresh = JobStore(path, WEEK)
    assert fresh.damaged is not None and fresh.damaged.name.startswith(path.name + DAMAGED)
    assert fresh.damaged.read_bytes() != b"" and Path(f"{fresh.damaged}-wal").exists()
    (warning,) = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert str(path) in warning and str(fresh.damaged) in warning
    assert "file is not a database" in warning
    assert fresh.count == 0
    job = finished()
    fresh.save(job)
    assert fresh.get(job.id) is not None


def test_a_version_1_file_is_moved_over(tmp_path: Path) -> None:
    path = tmp_path / "queen-jobs.sqlite"
    job = finished(model="smollm2-135m", text="Paris.")
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, request TEXT NOT NULL, state TEXT NOT NULL, "
        "created_at REAL NOT NULL, started_at REAL, first_token_at REAL, finished_at REAL, "
        "worker TEXT, text TEXT NOT NULL DEFAULT '', tokens INTEGER NOT NULL DEFAULT 0, "
        "result TEXT, events TEXT)"
    )
    events = [[e.id, e.type.value, e.data] for e in job.log.events]
    db.execute(
        "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            job.id,
            json.dumps(job.request.to_json()),
            "completed",
            job.created_at,
            job.started_at,
            job.first_token_at,
            job.finished_at,
            job.worker,
            job.text,
            job.tokens,
            json.dumps(job.result),
            json.dumps(events),
        ),
    )
    db.commit()
    db.close()
    store = JobStore(path, WEEK)
    back = store.get(job.id)
    assert back is not None and back.summary() == job.summary()
    assert store.page(model="smollm2-135m")[0][0]["events"] == 3


def test_the_registry_keeps_only_live_and_recent_jobs(store: JobStore) -> None:
    jobs = JobRegistry(load=store.get, recent=4)
    made = [jobs.create(JobRequest(model="m", prompt=str(i))) for i in range(10)]
    assert len(jobs) == 10 and [j.id for j in jobs.live] == [j.id for j in made]
    for job in made:
        job.emit(EventType.END, {"outcome": "completed"})
        store.save(job)
        jobs.finished(job)
    assert len(jobs) == 4 and not jobs.live
    assert [j.id for j in jobs] == [j.id for j in made[-4:]]
    assert jobs.in_memory(made[0].id) is None
    back = jobs.get(made[0].id)  # read back from the store, and now recent
    assert back.id == made[0].id and back.state is JobState.COMPLETED
    assert jobs.in_memory(made[0].id) is back and len(jobs) == 4
    with pytest.raises(UnknownJob):
        jobs.get("job-nope")


def test_a_page_is_at_most_the_limit(store: JobStore) -> None:
    for _ in range(3):
        store.save(finished())
    records, cursor = store.page(limit=MAX_PAGE)
    assert len(records) == 3 and cursor is None


def test_damage_found_past_the_first_page_is_moved_aside_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "queen-jobs.sqlite"
    store = JobStore(path, WEEK)
    for _ in range(300):
        store.save(finished(text="x" * 2000))
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = bytearray(path.read_bytes())
    data[4096:] = os.urandom(len(data) - 4096)  # every page but the first (the schema's)
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        fresh = JobStore(path, WEEK)
        records, _ = fresh.page()
    assert fresh.damaged is not None, "the damage was not noticed"
    assert records == [] and fresh.count == 0
    assert any("is damaged" in r.getMessage() for r in caplog.records)
    job = finished()
    fresh.save(job)
    assert fresh.get(job.id) is not None
