"""A queen that starts takes back the jobs the last one died with (rbee_queen.orchestrator
``_resume``): each is live again at once with the events its clients saw, and goes on;
one whose deadline passed while no queen ran fails with deadline_exceeded."""

from __future__ import annotations

import asyncio
import time

from rbee_core import create_plugin_manager
from rbee_core.events import EventType
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job, JobState
from rbee_core.paths import state_dir
from rbee_queen.job_store import JobStore
from rbee_queen.orchestrator import Queen


def _died_with(*jobs: Job) -> None:
    """What a queen killed mid-answer leaves in its store."""
    store = JobStore(state_dir() / "queen-jobs.sqlite", 3600.0)
    for job in jobs:
        store.follow(job)
        store.save(job)
        job.mark_running("worker-1")
        store.save(job)
        for piece in ("Once", " upon"):
            job.emit(EventType.TOKEN, {"text": piece})
    store.close()


def test_a_job_whose_deadline_passed_while_no_queen_ran_fails_with_deadline_exceeded() -> None:
    late = Job(request=JobRequest(model="m", prompt="p", timeout=5.0))
    late.created_at = time.time() - 60
    live = Job(request=JobRequest(model="m", prompt="p", timeout=600.0))
    _died_with(late, live)

    async def start() -> None:
        queen = Queen(create_plugin_manager())
        queen._start = lambda job, resumed=False: None  # type: ignore[method-assign]  # placing is not tested here
        queen._resume()
        back = queen.jobs.get(late.id)
        assert back.state is JobState.FAILED
        assert back.result["code"] == "deadline_exceeded", back.result
        assert "passed while the queen was down" in back.result["message"]
        again = queen.jobs.get(live.id)
        assert again.state is JobState.QUEUED and again.text == "Once upon"
        events = again.log.events
        assert [e.type for e in events[:2]] == [EventType.TOKEN, EventType.TOKEN]
        assert events[2].type is EventType.NARRATION and events[2].id == 3
        assert "the queen restarted while the job was running" in events[2].data["message"]
        await queen.close()

    asyncio.run(start())
