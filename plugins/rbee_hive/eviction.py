"""Making room for a job's worker: unload idle workers, or wait for busy ones.

A job needs a worker that does not fit. The hive unloads idle workers, least recently used
first (room.py chooses), each only once it agreed to retire (so that a job the queen sent it
meanwhile is never lost: rbee_worker/retire.py), and says so in the job's stream. When idle
workers are not enough it waits, saying for which busy workers, up to the job's time; and
when it could never fit, because pinned workers hold the rest, it fails at once, naming
both sizes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rbee_core.backends import Backend
from rbee_core.errors import DeviceTooSmall
from rbee_core.models import LocalModel
from rbee_core.narration import Narration
from rbee_core.units import human_bytes
from rbee_hive.room import Holding, RoomPlan, idle_words, plan_room
from rbee_hive.workers import Emit, WorkerProcess

if TYPE_CHECKING:
    from rbee_hive.hive import Hive, Room

__all__ = ["MIN_IDLE", "make_room_for"]

log = logging.getLogger("rbee.hive")

# A worker unloaded to make room must have been idle this long: the queen hands a worker its
# next queued job a moment after the last one ends, and that moment is not idleness.
MIN_IDLE = 1.0
# While it waits, the plan is made again at least this often (heartbeats wake it sooner).
POLL = 0.5
ACTOR = "rbee-hive"


async def make_room_for(
    hive: Hive,
    model: LocalModel,
    device_id: str,
    backend: Backend,
    emit: Emit,
    wait: float,
    start: Callable[[Room], asyncio.Task[WorkerProcess]],
    left: Callable[[], bool] = lambda: False,
) -> asyncio.Task[WorkerProcess]:
    """Room for a worker of ``backend`` for ``model`` on the device, then ``start`` it: at
    once if it fits, else after unloading idle workers and waiting up to ``wait`` seconds
    for busy ones. ``DeviceTooSmall`` when it could never fit, did not within ``wait``, or
    the job that asked ``left`` meanwhile. Each try holds the hive's room lock (so that two
    jobs never unload for each other), the waits between them do not (so that a waiting job
    blocks no other)."""
    what = f"{model.name} on {backend.name}"
    key = (model.name, device_id, backend.name)
    deadline = time.monotonic() + wait
    told: tuple[str, ...] | None = None
    fp = hive.footprint(model, device_id, backend)
    while True:
        async with hive.room_lock:
            if (shared := hive.starting(key)) is not None:
                return shared  # another job started this worker meanwhile
            hive.prune()  # workers that died free their memory
            device = hive.device(device_id)  # as it is now
            try:
                return start(hive.check_room(model, device, backend, fp))
            except DeviceTooSmall as too_small:
                plan = plan_room(hive.least_need(fp), device.free_memory, hive.holdings(device_id))
                if plan.never:
                    raise _never(hive, what, device_id, plan) from None
                if plan.evict and await _unload(hive, plan.evict, what, emit):
                    continue
                # Idle ones that refused to retire took a job since their last heartbeat.
                blockers = plan.waiting_for or plan.evict
                if wait <= 0 or not blockers:
                    raise too_small
                if time.monotonic() >= deadline or left():
                    why = "the job that asked left" if left() else f"within {wait:.0f} s"
                    raise DeviceTooSmall(
                        f"no room for {what} on {device_id} of hive {hive.name} ({why}): it "
                        f"needs {human_bytes(plan.need)}, {human_bytes(plan.free)} free; still "
                        f"busy: {_list(blockers)}",
                        device=device_id,
                    ) from None
                ids = tuple(h.id for h in blockers)
                if ids != told:
                    told = ids
                    verb = "is" if len(blockers) == 1 else "are"
                    emit(
                        Narration(
                            ACTOR,
                            "room_wait",
                            f"waiting for room: {_list(blockers)} {verb} busy; {what} needs "
                            f"{human_bytes(plan.need)} on {device_id}, "
                            f"{human_bytes(plan.free)} free",
                        )
                    )
        await hive.room_changed(min(POLL, max(0.0, deadline - time.monotonic())))


async def _unload(hive: Hive, evict: tuple[Holding, ...], what: str, emit: Emit) -> bool:
    """Unload ``evict`` in order, each once it agreed to retire; whether any was."""
    unloaded = False
    for holding in evict:
        worker = hive.workers.get(holding.id)
        if worker is None:  # it stopped meanwhile: the plan is made again
            return True
        refused = await worker.retire(hive.http, MIN_IDLE)
        if refused is not None:
            log.info("worker %s not unloaded: %s", worker.describe(), refused)
            return unloaded
        idle = idle_words(time.time() - worker.idle_since)
        emit(
            Narration(
                ACTOR,
                "unload",
                f"unloading {worker.model} ({worker.id} on {worker.backend}, idle {idle}, "
                f"{human_bytes(holding.held)}) to make room for {what}",
            )
        )
        log.info("unloading worker %s to make room for %s", worker.describe(), what)
        hive.workers.pop(worker.id, None)
        await worker.stop()
        unloaded = True
    return unloaded


def _never(hive: Hive, what: str, device_id: str, plan: RoomPlan) -> DeviceTooSmall:
    limit = hive.cpu_memory_limit if device_id == "cpu" else None
    why = f" (its --cpu-memory-limit is {human_bytes(limit)})" if limit is not None else ""
    pinned = ""
    if plan.pinned:
        held = human_bytes(sum(h.held for h in plan.pinned))
        pinned = f"; pinned workers (keep-alive -1) hold {held}: {_list(plan.pinned)}"
    return DeviceTooSmall(
        f"{what} needs at least {human_bytes(plan.need)} on {device_id}, but hive "
        f"{hive.name} can never have more than {human_bytes(plan.most)} free there{why}"
        f"{pinned}",
        device=device_id,
    )


def _list(holdings: tuple[Holding, ...]) -> str:
    now = time.time()
    return ", ".join(h.describe(now) for h in holdings)
