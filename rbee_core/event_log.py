"""An append-only, replayable event log with async subscribers.

Every subscriber reads the whole log from any point (a late client gets the job from its
first event; a reconnecting one from after its ``Last-Event-ID``) and then follows new events
until the log is closed. Appending never blocks and never drops an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from rbee_core.events import Event, EventType

__all__ = ["EventLog"]


class EventLog:
    """Events of one job, ids starting at 1. Use from the event loop's thread only."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._closed = False
        self._wakeup = asyncio.Event()
        # Called with each event as it is appended, before any subscriber can see it (the
        # queen writes a running job's events down, so what a client saw survives it).
        self.on_append: Callable[[Event], None] | None = None

    def __len__(self) -> int:
        return len(self._events)

    @property
    def events(self) -> list[Event]:
        """A copy of the events so far."""
        return list(self._events)

    @property
    def closed(self) -> bool:
        """True once a terminal event was appended."""
        return self._closed

    def append(self, type_: EventType, data: dict[str, Any], wire: str | None = None) -> Event:
        """Add an event; a terminal one closes the log. Appending to a closed log is a bug.
        ``wire`` is ``data`` already encoded as JSON, when the caller has it."""
        if self._closed:
            raise RuntimeError(f"event log is closed; cannot append {type_} event")
        event = Event(id=len(self._events) + 1, type=type_, data=data, wire=wire)
        self._events.append(event)
        if self.on_append is not None:
            self.on_append(event)
        if type_.terminal:
            self._closed = True
        # Wake every waiting subscriber, then arm a fresh event for the next append.
        self._wakeup.set()
        self._wakeup = asyncio.Event()
        return event

    def since(self, after: int) -> list[Event]:
        """The events with id > ``after``."""
        return self._events[max(after, 0) :]

    async def wait(self, after: int, patience: float | None = None) -> bool:
        """Wait until there is an event after ``after`` or the log is closed; False if
        ``patience`` seconds passed first."""
        wakeup = self._wakeup
        if len(self._events) > after or self._closed:
            return True
        try:
            await asyncio.wait_for(wakeup.wait(), patience)
        except TimeoutError:
            return False
        return True

    async def follow(self, after: int = 0) -> AsyncIterator[Event]:
        """Yield the events with id > ``after``, then new ones, until the log is closed."""
        index = max(after, 0)
        while True:
            wakeup = self._wakeup
            while index < len(self._events):
                yield self._events[index]
                index += 1
            if self._closed:
                return
            await wakeup.wait()
