"""Replicas, fair waiting and placement by prefix, end to end in one process (the fakes of
test_orchestration): a busy model gets a second worker on the other hive, jobs wait in one
line per model and start in order, a conversation goes back where its prefix is cached."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from test_orchestration import (
    CPU,
    MODEL,
    Cluster,
    FakeHive,
    FakeWorker,
    in_cluster,
    narration,
    terminal,
)

from rbee_core.errors import WorkerFailed
from rbee_core.peer_identity import HIVE_TOKEN_HEADER


@dataclass
class SizedWorker(FakeWorker):
    """A fake worker with ``slots`` slots."""

    slots: int = 4

    def info(self, hive: str, model: str, device: str) -> dict[str, Any]:
        return super().info(hive, model, device) | {"slots": self.slots}


async def until(check: Any) -> None:
    async with asyncio.timeout(5.0):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def streams(c: Cluster, jobs: list[str]) -> list[list[tuple[str, Any]]]:
    return list(await asyncio.gather(*(c.stream(j) for j in jobs)))


@in_cluster()
async def test_a_busy_model_gets_a_second_worker_on_the_other_hive_and_both_serve(
    c: Cluster,
) -> None:
    first = SizedWorker("worker-1-1", "worker-a.test", hang_after=1)
    second = SizedWorker("worker-2-1", "worker-b.test", hang_after=1)
    alpha, beta = FakeHive("alpha", [CPU], first), FakeHive("beta", [CPU], second)
    await c.join(alpha)
    await c.join(beta)
    jobs = [await c.submit(keep_alive=30)]
    await until(lambda: first.hanging.is_set())
    jobs += [await c.submit(keep_alive=30) for _ in range(5)]
    reading = asyncio.create_task(streams(c, jobs))
    await until(lambda: len(beta.spawns) == 1 and len(second.requests) == 2)
    assert len(alpha.spawns) == 1 and len(first.requests) == 4  # its 4 slots, no more
    assert beta.spawns == [
        {"model": MODEL, "device": "cpu", "make_room": True, "room_wait": 0.0, "keep_alive": 30}
    ]
    first.release.set()
    second.release.set()
    read = await reading
    assert all(terminal(s)[0] == "end" for s in read)
    workers = [(await c.record(j))["worker"] for j in jobs]
    assert sorted(workers) == ["worker-1-1"] * 4 + ["worker-2-1"] * 2, workers
    said = [m for s in read for m in narration(s)]
    starts = [m for m in said if "starting a second worker" in m]
    # The fifth job found every slot busy: it started the replica as it began to wait.
    assert starts == [
        "all 4 slots of worker-1-1 on alpha are busy and 1 job waits: starting a second "
        f"worker of {MODEL} on beta"
    ], said


@in_cluster()
async def test_no_replica_beyond_max_replicas_and_jobs_start_in_order_with_their_place(
    c: Cluster,
) -> None:
    worker = SizedWorker("worker-1-1", "worker-a.test", hang_after=1, slots=1)
    alpha = FakeHive("alpha", [CPU], worker)
    beta = FakeHive("beta", [CPU], SizedWorker("worker-2-1", "worker-b.test"))
    await c.join(alpha)
    await c.join(beta)
    c.queen.placement.replicas.max_replicas = 1
    jobs = [await c.submit()]
    await until(lambda: worker.hanging.is_set())
    for _ in range(3):
        jobs.append(await c.submit())
        await asyncio.sleep(0.05)
    reading = asyncio.create_task(streams(c, jobs))
    await asyncio.sleep(0.2)
    worker.release.set()
    read = await reading
    assert beta.spawns == []
    records = [await c.record(j) for j in jobs]
    started = [r["started_at"] for r in records]
    assert started == sorted(started), started
    assert any(
        f"the worker is busy with 1 job(s); no job of {MODEL} is ahead" in m
        for m in narration(read[1])
    ), narration(read[1])
    assert f"2 jobs of {MODEL} are ahead of this one; it waits its turn" in narration(read[3])


@in_cluster()
async def test_a_replica_that_fails_is_narrated_and_the_jobs_wait_for_the_first_worker(
    c: Cluster,
) -> None:
    worker = SizedWorker("worker-1-1", "worker-a.test", hang_after=1, slots=1)
    failed = WorkerFailed("the worker could not start: out of memory").to_dict()["error"]
    alpha = FakeHive("alpha", [CPU], worker)
    beta = FakeHive("beta", [CPU], SizedWorker("worker-2-1", "worker-b.test"), failure=failed)
    await c.join(alpha)
    await c.join(beta)
    jobs = [await c.submit()]
    await until(lambda: worker.hanging.is_set())
    jobs.append(await c.submit())
    reading = asyncio.create_task(streams(c, jobs))
    await until(lambda: len(beta.spawns) == 1)
    await asyncio.sleep(0.1)
    worker.release.set()
    read = await reading
    assert [terminal(s)[0] for s in read] == ["end", "end"]
    assert (await c.record(jobs[1]))["worker"] == "worker-1-1"
    said = narration(read[1])
    assert any(
        f"the new worker of {MODEL} on beta did not start (worker_failed: the worker could "
        "not start: out of memory); the jobs wait for the running workers" in m
        for m in said
    ), said
    assert len(beta.spawns) == 1  # not tried again at once


@in_cluster(replicas={MODEL: (1, 2)})
async def test_the_first_min_replicas_workers_are_pinned(c: Cluster) -> None:
    hive = FakeHive("alpha", [CPU], SizedWorker("worker-1-1", "worker-a.test"))
    await c.join(hive)
    assert terminal(await c.stream(await c.submit(keep_alive=2)))[0] == "end"
    assert hive.spawns[0]["keep_alive"] == -1


async def _two_loaded_workers(c: Cluster) -> tuple[SizedWorker, SizedWorker]:
    """Two hives, each already running a worker of the model (as a heartbeat reports)."""
    one = SizedWorker("worker-1-1", "worker-a.test")
    two = SizedWorker("worker-2-1", "worker-b.test")
    for name, worker in (("alpha", one), ("beta", two)):
        hive = FakeHive(name, [CPU], worker)
        await c.join(hive)
        beat = {
            "name": name,
            "url": hive.url,
            "models": [],
            "workers": [worker.info(name, MODEL, "cpu")],
        }
        answer = await c.client.post(
            "/hives/heartbeat", json=beat, headers={HIVE_TOKEN_HEADER: hive.secret}
        )
        assert answer.status_code == 200, answer.text
    return one, two


def _chat(*turns: str) -> list[dict[str, str]]:
    system = {"role": "system", "content": "You answer questions about bees. " * 40}
    roles = ("user", "assistant")
    return [system, *({"role": roles[i % 2], "content": t} for i, t in enumerate(turns))]


@in_cluster()
async def test_a_conversation_goes_back_to_the_worker_that_holds_its_prefix(c: Cluster) -> None:
    one, _ = await _two_loaded_workers(c)
    first, second = (c.queen.workers[w] for w in ("worker-1-1", "worker-2-1"))
    assert first.queue.take()  # a job of another conversation runs there
    job = await c.submit(messages=_chat("What is a bee?"))
    read = await c.stream(job)
    assert (await c.record(job))["worker"] == "worker-2-1"  # cold: the least busy
    assert any(
        "worker-2-1" in m and "is least loaded (0 of 4 slots in use)" in m for m in narration(read)
    )
    first.queue.give_back()
    assert second.queue.take()  # now the other one is busier, within the margin
    nxt = await c.submit(messages=_chat("What is a bee?", "".join(one.tokens), "And a hive?"))
    read = await c.stream(nxt)
    assert (await c.record(nxt))["worker"] == "worker-2-1"
    said = [m for m in narration(read) if "prompt tokens" in m]
    assert len(said) == 1, narration(read)
    assert said[0].startswith(f"the worker worker-2-1 already has {MODEL} loaded; on beta it ")
    assert "holds" in said[0] and "of this job's" in said[0], said
    second.queue.give_back()


@in_cluster()
async def test_load_wins_over_a_prefix_on_a_worker_busier_than_the_margin(c: Cluster) -> None:
    one, _ = await _two_loaded_workers(c)
    first = await c.submit(messages=_chat("What is a bee?"))
    assert terminal(await c.stream(first))[0] == "end"
    assert (await c.record(first))["worker"] == "worker-1-1"
    one.hang_after = 1
    hanging = [await c.submit(prompt=f"Story {i}.", hive="alpha") for i in range(3)]
    await until(lambda: c.queen.workers["worker-1-1"].queue.running == 3)
    nxt = await c.submit(messages=_chat("What is a bee?", "".join(one.tokens), "And a hive?"))
    read = await c.stream(nxt)
    assert (await c.record(nxt))["worker"] == "worker-2-1"  # 3 > 0 + 2: load wins
    assert any(
        "worker-2-1" in m and "is least loaded (0 of 4 slots in use)" in m for m in narration(read)
    )
    one.release.set()
    for job in hanging:
        assert terminal(await c.stream(job))[0] == "end"


@in_cluster()
async def test_a_job_pinned_to_a_hive_without_a_worker_of_the_model_starts_one_there(
    c: Cluster,
) -> None:
    alpha = FakeHive("alpha", [CPU], SizedWorker("worker-1-1", "worker-a.test"))
    beta = FakeHive("beta", [CPU], SizedWorker("worker-2-1", "worker-b.test"))
    await c.join(alpha)
    await c.join(beta)
    first = await c.submit(hive="alpha")
    assert terminal(await c.stream(first))[0] == "end"
    second = await c.submit(hive="beta")
    assert terminal(await c.stream(second))[0] == "end"
    assert (await c.record(second))["worker"] == "worker-2-1"
    assert len(alpha.spawns) == len(beta.spawns) == 1
