"""Fair waiting: one line (FIFO) per model at the queen.

A job that cannot start at once waits in its model's line, not bound to any one worker.
Only the job at the head of a line places (placement.py): again whenever a slot frees on
a worker of the model or a new worker of it is ready (``poke``), and at least every
``RECHECK`` seconds. Jobs pinned elsewhere (a hive, a device, a backend) wait in a line of
their own, since they cannot take the same places. A job placed again (its worker went
away before it reached it) keeps its place: lines are ordered by ticket, not by arrival.

A waiting job's narration says how many jobs of its model are ahead of it when it starts
waiting, and again each time that number has halved (not on every move).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from rbee_core.jobs import Job

__all__ = ["RECHECK", "Key", "Place", "Waiting", "ahead"]

RECHECK = 1.0  # seconds: a head places again at least this often (a hive's news, a deadline)

Key = tuple[str, str | None, str | None, str | None]
"""A line: the model's catalog name, and the hive, device and backend the job pins."""

Say = Callable[[Job, str, str], None]


def ahead(n: int, model: str) -> str:
    """``n`` jobs of ``model`` are ahead of this one, in words."""
    if n == 0:
        return f"no job of {model} is ahead of this one"
    if n == 1:
        return f"1 job of {model} is ahead of this one"
    return f"{n:,} jobs of {model} are ahead of this one"


@dataclass(eq=False)
class Place:
    """A job's place in a line."""

    key: Key
    job: Job
    ticket: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    told: int | None = None  # the position last narrated


class Waiting:
    def __init__(self, say: Say) -> None:
        self.say = say
        self._lines: dict[Key, list[Place]] = {}
        self._tickets = itertools.count()

    def ticket(self) -> int:
        """A place in order of arrival, kept if the job is placed again."""
        return next(self._tickets)

    def join(self, key: Key, job: Job, ticket: int) -> Place:
        place = Place(key, job, ticket)
        line = self._lines.setdefault(key, [])
        tickets = [p.ticket for p in line]
        line.insert(bisect.bisect(tickets, ticket), place)
        if line[0] is place:
            place.wake.set()
        return place

    def leave(self, place: Place) -> None:
        """``place`` left its line (its job got a slot, failed or was cancelled): the next
        head places, and the jobs behind narrate their new position where it halved."""
        line = self._lines.get(place.key, [])
        if place not in line:
            return
        index = line.index(place)
        line.remove(place)
        if not line:
            del self._lines[place.key]
            return
        line[0].wake.set()
        for position, behind in enumerate(line[index:], start=index):
            if behind.told is not None and 0 < position <= behind.told // 2:
                self.tell(behind, position)

    def position(self, place: Place) -> int:
        """Jobs ahead of ``place`` in its line."""
        return self._lines.get(place.key, []).index(place)

    def is_head(self, place: Place) -> bool:
        line = self._lines.get(place.key, [])
        return bool(line) and line[0] is place

    def tell(self, place: Place, position: int, why: str = "") -> None:
        """Narrate ``place``'s position (after ``why``, if given)."""
        place.told = position
        words = ahead(position, place.key[0])
        self.say(place.job, "queued", f"{why}; {words}" if why else f"{words}; it waits its turn")

    def count(self, model: str) -> int:
        """Jobs waiting for ``model``, in every line of it."""
        return sum(len(line) for key, line in self._lines.items() if key[0] == model)

    def poke(self, model: str) -> None:
        """Something changed for ``model`` (a slot freed, a worker came or went): the head
        of each of its lines places again."""
        for key, line in self._lines.items():
            if key[0] == model and line:
                line[0].wake.set()

    async def wait(self, place: Place) -> None:
        """Until ``place`` is poked, or ``RECHECK`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(place.wake.wait(), RECHECK)
        place.wake.clear()
