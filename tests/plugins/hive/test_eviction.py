"""Making room: which workers the hive unloads for a new one, without processes.

Idle workers go least recently used first; busy and pinned ones never; when idle ones are
not enough the job waits for busy ones; when even stopping every unpinned worker would not
be enough it fails at once, naming both sizes.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from rbee_core.backends import Footprint
from rbee_core.errors import DeviceTooSmall
from rbee_core.models import LocalModel
from rbee_core.narration import Narration
from rbee_hive import room as room_module
from rbee_hive.hive import Hive
from rbee_hive.room import Room
from rbee_hive.room_plan import Holding, idle_words, plan_room

MB = 10**6


def held(name: str, mb: int, idle_since: float = 0.0, **state: Any) -> Holding:
    return Holding(name, f"model-{name}", "llamacpp", mb * MB, idle_since=idle_since, **state)


def ids(holdings: tuple[Holding, ...]) -> list[str]:
    return [h.id for h in holdings]


def test_idle_workers_go_least_recently_used_first_and_no_more_than_needed() -> None:
    workers = [held("new", 300, idle_since=300), held("old", 300, idle_since=100)]
    workers.append(held("mid", 300, idle_since=200))
    plan = plan_room(need=500 * MB, free=100 * MB, holdings=workers)
    assert ids(plan.evict) == ["old", "mid"]  # 100 + 300 is short; + 300 is enough
    assert not plan.waiting_for and not plan.never and not plan.fits


def test_busy_and_pinned_workers_are_never_unloaded() -> None:
    workers = [
        held("busy", 900, idle_since=1, busy=True),
        held("pinned", 900, idle_since=2, pinned=True),
        held("idle", 400, idle_since=3),
    ]
    plan = plan_room(need=400 * MB, free=100 * MB, holdings=workers)
    assert ids(plan.evict) == ["idle"]


def test_when_idle_workers_are_not_enough_it_waits_for_busy_ones_and_unloads_nothing() -> None:
    workers = [
        held("idle", 200, idle_since=1),
        held("small", 100, busy=True),
        held("big", 500, busy=True),
    ]
    plan = plan_room(need=600 * MB, free=100 * MB, holdings=workers)
    assert plan.evict == () and ids(plan.waiting_for) == ["big"]
    assert not plan.never


def test_a_worker_starting_counts_as_busy() -> None:
    starting = Holding("a worker starting for m", "m", "torch", 500 * MB, busy=True)
    plan = plan_room(need=400 * MB, free=0, holdings=[starting])
    assert ids(plan.waiting_for) == ["a worker starting for m"]


def test_it_could_never_fit_when_pinned_workers_hold_the_rest() -> None:
    workers = [held("pinned", 400, pinned=True), held("idle", 100), held("busy", 100, busy=True)]
    plan = plan_room(need=350 * MB, free=100 * MB, holdings=workers)
    assert plan.never and plan.most == 300 * MB
    assert ids(plan.pinned) == ["pinned"] and plan.evict == () and plan.waiting_for == ()


def test_it_fits_as_it_is() -> None:
    assert plan_room(need=100 * MB, free=100 * MB, holdings=[held("idle", 100)]).fits


def test_idle_time_reads_as_people_say_it() -> None:
    assert [idle_words(s) for s in (12, 180, 7200)] == ["12 s", "3 min", "2 h"]
    assert "idle 3 min" in held("w", 1, idle_since=time.time() - 180).describe()


# -- the hive making room: fake workers that answer whether they agree to retire --------


class Sized:
    """Workers of 100 MB weights, 50 MB runtime and a 100-token cache of 1 MB a token."""

    name = "sized"
    formats = ("gguf",)

    def footprint(self, model: LocalModel, device: str, free_memory: int) -> Footprint:
        return Footprint(100 * MB, 50 * MB, MB, 100)

    def load(self, model: LocalModel, device: str, narrate: Any) -> Any:
        raise AssertionError("never loaded here")


class FakeWorker:
    """A worker as the hive sees it: heartbeat state, and an answer to ``retire``."""

    device, backend, alive = "cpu", "llamacpp", True

    def __init__(self, id_: str, idle_since: float, *, busy: bool = False, keep: float = 300):
        self.id, self.model, self.idle_since, self.busy = id_, f"model-{id_}", idle_since, busy
        self.keep_alive, self.reserved, self.stopped = keep, 250 * MB, False
        self.refuse: str | None = None

    @property
    def pinned(self) -> bool:
        return self.keep_alive < 0

    def memory(self) -> int:
        return 200 * MB

    def held(self) -> int:
        return self.reserved

    def describe(self) -> str:
        return self.id

    async def retire(self, http: Any, min_idle: float) -> str | None:
        return self.refuse

    async def stop(self) -> None:
        self.stopped, self.alive = True, False


@pytest.fixture
def model(tmp_path: Path) -> LocalModel:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"x")
    return LocalModel("m", path, "gguf")


async def make_room(h: Hive, model: LocalModel, emit: Any, wait: float, **kw: Any) -> Room:
    """``RoomCheck.make_room`` with a start that only records the room it was given."""
    rooms: list[Room] = []

    def start(room: Room) -> Any:
        rooms.append(room)
        return asyncio.ensure_future(asyncio.sleep(0))

    await h.room.make_room(model, "cpu", Sized(), start, emit=emit, wait=wait, **kw)
    (room,) = rooms
    return room


def run_hive(limit_mb: int, test: Any) -> list[str]:
    """Run ``test(hive, emit)`` in a loop with a hive of that CPU limit; the narration."""
    said: list[str] = []

    async def main() -> None:
        h = Hive("h", store=None, cpu_memory_limit=limit_mb * MB)  # type: ignore[arg-type]
        try:
            await test(h, lambda n: said.append(n.message) if isinstance(n, Narration) else None)
        finally:
            await h.http.aclose()

    asyncio.run(main())
    return said


@pytest.fixture(autouse=True)
def plenty_of_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(room_module, "available_memory", lambda: 64_000 * MB)


def test_the_hive_unloads_the_least_recently_used_idle_worker_and_says_so(
    model: LocalModel,
) -> None:
    now = time.time()
    old, recent = FakeWorker("w-old", now - 180), FakeWorker("w-recent", now - 10)

    async def test(h: Hive, emit: Any) -> None:
        h.workers.update({"w-recent": recent, "w-old": old})  # type: ignore[dict-item]
        room = await make_room(h, model, emit, 0)
        assert room.need == 250 * MB

    said = run_hive(600, test)
    assert old.stopped and not recent.stopped
    assert (
        "unloading model-w-old (w-old on llamacpp, idle 3 min, 250.0 MB) to make room " in (said[0])
    )
    assert said[0].endswith("for m on sized")


def test_a_worker_that_refuses_to_retire_is_waited_for_then_unloaded(model: LocalModel) -> None:
    worker = FakeWorker("w-1", time.time() - 60)
    worker.refuse = "it has 1 job(s) running or queued"  # a job reached it after its heartbeat

    async def test(h: Hive, emit: Any) -> None:
        h.workers.update({"w-1": worker})  # type: ignore[dict-item]
        waiting = asyncio.create_task(make_room(h, model, emit, 10))
        await asyncio.sleep(0.3)
        assert not waiting.done() and not worker.stopped
        worker.refuse = None  # its job ended
        await asyncio.wait_for(waiting, 5)

    said = run_hive(300, test)
    assert worker.stopped
    assert any(m.startswith("waiting for room: w-1 (model-w-1 on llamacpp") for m in said), said


def test_a_waiting_job_blocks_no_other_and_stops_when_its_asker_leaves(
    model: LocalModel,
) -> None:
    busy = FakeWorker("w-busy", 0, busy=True)
    gone = asyncio.Event()

    async def test(h: Hive, emit: Any) -> None:
        h.workers.update({"w-busy": busy})  # type: ignore[dict-item]
        waiting = asyncio.create_task(make_room(h, model, emit, 60, left=gone.is_set))
        await asyncio.sleep(0.2)
        assert not waiting.done() and not h.room._lock.locked()  # others may make room
        gone.set()  # the job was cancelled: its stream to the hive closed
        with pytest.raises(DeviceTooSmall, match=r"\(the job that asked left\)"):
            await asyncio.wait_for(waiting, 2)

    run_hive(300, test)
    assert not busy.stopped


def test_a_busy_worker_is_waited_for_up_to_the_limit_then_the_job_fails(
    model: LocalModel,
) -> None:
    busy = FakeWorker("w-busy", 0, busy=True)

    async def test(h: Hive, emit: Any) -> None:
        h.workers.update({"w-busy": busy})  # type: ignore[dict-item]
        with pytest.raises(DeviceTooSmall, match=r"\(within 1 s\): .*still busy: w-busy"):
            await make_room(h, model, emit, 1)

    said = run_hive(300, test)
    assert not busy.stopped
    assert [m for m in said if m.startswith("waiting for room:")] == [
        "waiting for room: w-busy (model-w-busy on llamacpp, 250.0 MB, busy) is busy; m on "
        "sized needs 250.0 MB on cpu, 50.0 MB free"
    ]


def test_a_pinned_worker_is_kept_and_the_job_fails_at_once_naming_both_sizes(
    model: LocalModel,
) -> None:
    pinned = FakeWorker("w-pin", 0, keep=-1)

    async def test(h: Hive, emit: Any) -> None:
        h.workers.update({"w-pin": pinned})  # type: ignore[dict-item]
        started = time.monotonic()
        with pytest.raises(DeviceTooSmall) as info:
            await make_room(h, model, emit, 60)
        assert time.monotonic() - started < 1  # at once, not after the wait
        assert info.value.message == (
            "m on sized needs at least 250.0 MB on cpu, but hive h can never have more than "
            "50.0 MB free there (its --cpu-memory-limit is 300.0 MB); pinned workers "
            "(keep-alive -1) hold 250.0 MB: w-pin (model-w-pin on llamacpp, 250.0 MB, pinned)"
        )

    run_hive(300, test)
    assert not pinned.stopped
