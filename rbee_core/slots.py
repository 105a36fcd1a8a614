"""Counted slots: how many jobs may run at once on something, and how many wait for one.

A worker runs up to its batch size of jobs at once and queues the rest (``hold``). The queen
sends a worker no more than that: its jobs wait in their model's line (rbee_queen/waiting.py),
not bound to one worker, and take a slot of the worker chosen for them only when it has
room (``take``), giving it back when the job ends (``give_back``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

__all__ = ["Slots"]


class Slots:
    """``capacity`` slots, held with ``async with slots.hold():`` (waiting, first come first
    served) or taken at once with ``take`` / ``give_back``. Use from one event loop."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Jobs waiting in ``hold`` for a slot."""
        return len(self._waiters)

    @property
    def load(self) -> int:
        """Jobs holding a slot plus jobs waiting for one."""
        return self.running + self.waiting

    @property
    def full(self) -> bool:
        return self.running >= self.capacity

    def take(self) -> bool:
        """Take a free slot now if there is one nobody waits for; never waits. Each ``True``
        is matched by one ``give_back``."""
        if self.full or self._waiters:
            return False
        self.running += 1
        return True

    def give_back(self) -> None:
        """Free a slot: the first waiter in ``hold`` gets it."""
        self.running -= 1
        while self._waiters and not self.full:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.running += 1  # handed over: counted before the waiter wakes
                waiter.set_result(None)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Wait for a free slot (first come, first served) and hold it inside the block."""
        if not self.take():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.give_back()  # cancelled as the slot was handed over: pass it on
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                raise
        try:
            yield
        finally:
            self.give_back()
