"""The queen as its plugins see it (rbee_core.queen_api): what they read comes from the
queen's own tables and records, in the shapes the protocol declares."""

from __future__ import annotations

import asyncio

from rbee_core import create_plugin_manager
from rbee_core.job_request import JobRequest
from rbee_core.jobs import JobState
from rbee_core.messages import HiveState, WorkerInfo
from rbee_core.queen_api import QueenApi, WorkerLoad
from rbee_queen.orchestrator import Queen


def _queen() -> Queen:
    return Queen(create_plugin_manager("queen"))


def test_hives_and_workers_as_plugins_read_them() -> None:
    queen = _queen()
    record = queen.hives.register("alpha", "http://127.0.0.1:9301")
    info = WorkerInfo("worker-1", "alpha", "m", "cpu", "http://127.0.0.1:9302", slots=2)
    worker = queen.fleet.adopt(record, info)

    async def hold_one() -> None:
        async with worker.queue.hold():
            api: QueenApi = queen
            assert api.worker_loads() == {"worker-1": WorkerLoad(running=1, waiting=0)}

    asyncio.run(hold_one())
    api: QueenApi = queen
    assert api.worker_loads() == {"worker-1": WorkerLoad(running=0, waiting=0)}
    assert api.hive_states() == [HiveState.JOINING]
    [hive] = api.hive_listing()
    assert hive["name"] == "alpha"
    assert [w["id"] for w in hive["workers"]] == ["worker-1"]


def test_job_records_and_state_counts_come_from_the_store() -> None:
    queen = _queen()
    for prompt in ("one", "two", "three"):
        job = queen.jobs.create(JobRequest(prompt=prompt, model="m"))
        job.state = JobState.COMPLETED
        queen.store.save(job)
    api: QueenApi = queen
    records = api.job_records(2)
    assert len(records) == 2
    assert {r["job_id"] for r in records} <= {job.id for job in queen.jobs}
    assert api.job_state_counts() == {"completed": 3}
