"""Counted slots: how many jobs may run at once on something, and how many wait for one.

A worker runs up to its batch size of jobs at once; the queen sends a worker no more than
that. Both count the same way: jobs holding a slot, and jobs waiting, in order, for one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["Slots"]


class Slots:
    """``capacity`` slots, held with ``async with slots.hold():``. Use from one event loop."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.running = 0
        self.waiting = 0
        self._free = asyncio.Semaphore(capacity)

    @property
    def load(self) -> int:
        """Jobs holding a slot plus jobs waiting for one."""
        return self.running + self.waiting

    @property
    def full(self) -> bool:
        return self.running >= self.capacity

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Wait for a free slot (first come, first served) and hold it inside the block."""
        self.waiting += 1
        try:
            await self._free.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._free.release()
