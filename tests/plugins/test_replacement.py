"""A job whose worker went away before the job reached it is placed again, never lost.

The hive unloads idle workers to make room for another model; the queen, which learns of it
only at the hive's next heartbeat, may meanwhile send a job to such a worker. The worker
answers ``worker_retired`` (or, once its process exited, refuses the connection), nothing
ran, and the queen places the job again: here it starts a new worker, and the job answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from test_orchestration import CPU, Cluster, FakeHive, FakeWorker, in_cluster, narration, terminal

from rbee_core.errors import WorkerRetired


@dataclass
class GoingWorker(FakeWorker):
    """A worker whose first ``gone`` jobs find it retired (``refuse``) or its process
    gone (``connect``)."""

    gone: int = 1
    how: str = "refuse"

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if self.gone:
            self.gone -= 1
            if self.how == "connect":
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            retired = WorkerRetired("this worker is being unloaded to make room")
            return httpx.Response(retired.status, json=retired.to_dict())
        return await super().handle(request)


@in_cluster()
async def test_a_job_sent_to_a_retired_worker_is_placed_again_and_answers(c: Cluster) -> None:
    worker = GoingWorker("worker-1-1", "worker-1.test")
    hive = FakeHive("alpha", [CPU], worker)
    await c.join(hive)
    stream = await c.stream(await c.submit())

    event, end = terminal(stream)
    assert (event, end["outcome"]) == ("end", "completed"), end
    assert [d["text"] for e, d in stream if e == "token"] == worker.tokens
    assert len(hive.spawns) == 2  # the first worker left; the hive started another
    said = narration(stream)
    assert any(
        "was unloaded before the job reached it; placing the job again" in m for m in said
    ), said


@in_cluster()
async def test_a_job_whose_worker_exited_before_it_was_sent_is_placed_again(c: Cluster) -> None:
    worker = GoingWorker("worker-1-1", "worker-1.test", how="connect")
    hive = FakeHive("alpha", [CPU], worker)
    await c.join(hive)
    job_id = await c.submit()
    event, _ = terminal(await c.stream(job_id))
    assert event == "end"
    record = await c.record(job_id)
    assert record["state"] == "completed" and record["text"] == "The capital is Paris."
    assert len(hive.spawns) == 2


@in_cluster()
async def test_a_worker_that_keeps_going_away_fails_the_job_clearly(c: Cluster) -> None:
    hive = FakeHive("alpha", [CPU], GoingWorker("worker-1-1", "worker-1.test", gone=99))
    await c.join(hive)
    event, error = terminal(await c.stream(await c.submit()))
    assert (event, error["code"]) == ("error", "worker_lost"), error
    assert "was unloaded before the job reached it" in error["message"]
    assert len(hive.spawns) == 4  # placed at most MAX_PLACEMENTS times, then it says why
