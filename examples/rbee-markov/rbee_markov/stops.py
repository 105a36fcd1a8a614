"""Stop strings that may span several words of output."""

from __future__ import annotations

__all__ = ["StopFilter"]


class StopFilter:
    """Feed text as it is generated; get back what is safe to emit and whether to stop.

    Text that could be the start of a stop string is held back until it clearly is not, so
    the client never sees part of a stop string. The stop string itself is never emitted.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """``(text to emit now, whether a stop string was reached)``."""
        if not self._stops:
            return text, False
        pending = self._pending + text
        hits = [pending.find(s) for s in self._stops if s in pending]
        if hits:
            self._pending = ""
            return pending[: min(hits)], True
        hold = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(pending)), 0, -1):
                if pending.endswith(stop[:n]):
                    hold = max(hold, n)
                    break
        self._pending = pending[len(pending) - hold :]
        return pending[: len(pending) - hold], False

    def flush(self) -> str:
        """What is still held back when generation ends without reaching a stop string."""
        text, self._pending = self._pending, ""
        return text
