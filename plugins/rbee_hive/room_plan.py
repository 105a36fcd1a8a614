"""The plan for making room: which idle workers to unload so that a new one fits.

Idle workers go, least recently used first; never a busy one (running or queued jobs; a
worker still starting counts as busy) and never a pinned one (keep-alive -1). When idle
ones are not enough the plan is to wait for the fewest busy ones; when even every worker
that is not pinned gone would not be enough, it could never fit. The plan is a pure
function of the numbers the hive knows, so that it is tested without processes;
``rbee_hive.room.RoomCheck`` carries it out.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rbee_core.units import human_bytes

__all__ = ["Holding", "RoomPlan", "describe_all", "idle_words", "plan_room"]


@dataclass(frozen=True, slots=True)
class Holding:
    """Memory a worker (or a worker still starting) holds on the device.

    ``busy``: it has running or queued jobs (a starting worker counts as busy: it is about
    to serve the job that asked for it); ``pinned``: its keep-alive is -1; ``idle_since``:
    when it last became idle, the order of least recent use."""

    id: str
    model: str
    backend: str
    held: int
    busy: bool = False
    pinned: bool = False
    idle_since: float = 0.0

    def describe(self, now: float | None = None) -> str:
        """``worker-1 (smollm2-135m on llamacpp, 392.0 MB, idle 3 min)``."""
        state = "pinned" if self.pinned else "busy" if self.busy else None
        if state is None:
            state = f"idle {idle_words((now or time.time()) - self.idle_since)}"
        return f"{self.id} ({self.model} on {self.backend}, {human_bytes(self.held)}, {state})"


@dataclass(frozen=True, slots=True)
class RoomPlan:
    """What to do for a worker that needs ``need`` bytes where ``free`` are free now.

    Exactly one holds: ``evict`` is not empty (unload these, in this order, then it fits);
    ``waiting_for`` is not empty (idle workers are not enough: these busy ones must finish
    first); ``never`` (even with every worker that is not pinned gone it would not fit:
    ``most`` is the most it could ever have)."""

    need: int
    free: int
    most: int
    evict: tuple[Holding, ...] = ()
    waiting_for: tuple[Holding, ...] = ()
    pinned: tuple[Holding, ...] = ()

    @property
    def never(self) -> bool:
        return self.need > self.most

    @property
    def fits(self) -> bool:
        """It fits as things are: nothing to unload, nothing to wait for."""
        return not self.never and not self.evict and not self.waiting_for


def plan_room(need: int, free: int, holdings: Iterable[Holding]) -> RoomPlan:
    """The workers to unload (least recently used first) so that ``need`` bytes are free,
    or the busy workers to wait for, or that it could never fit."""
    everyone = list(holdings)
    pinned = tuple(h for h in everyone if h.pinned)
    idle = sorted((h for h in everyone if not h.pinned and not h.busy), key=lambda h: h.idle_since)
    busy = sorted((h for h in everyone if not h.pinned and h.busy), key=lambda h: -h.held)
    most = free + sum(h.held for h in idle) + sum(h.held for h in busy)
    plan = RoomPlan(need, free, most, pinned=pinned)
    if need > most:
        return plan
    evict = _enough(idle, need - free)
    if evict is not None:
        return RoomPlan(need, free, most, evict=evict, pinned=pinned)
    # Idle ones are not enough: wait for the fewest busy workers (largest first) that would
    # free the rest once they and every idle worker are gone.
    short = need - free - sum(h.held for h in idle)
    waiting = _enough(busy, short)
    assert waiting is not None  # need <= most
    return RoomPlan(need, free, most, waiting_for=waiting, pinned=pinned)


def _enough(holdings: Sequence[Holding], short: int) -> tuple[Holding, ...] | None:
    """The first of ``holdings``, in order, that free ``short`` bytes; None if all do not."""
    if short <= 0:
        return ()
    taken: list[Holding] = []
    for h in holdings:
        taken.append(h)
        short -= h.held
        if short <= 0:
            return tuple(taken)
    return None


def idle_words(seconds: float) -> str:
    """``12 s``, ``3 min``, ``2 h``: how long a worker has been idle, as narration says it."""
    if seconds < 90:
        return f"{max(0, seconds):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def describe_all(holdings: tuple[Holding, ...]) -> str:
    """The holdings as narration lists them, comma-separated."""
    now = time.time()
    return ", ".join(h.describe(now) for h in holdings)
