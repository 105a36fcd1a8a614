"""Stop strings that may span token boundaries: every backend needs this to honour ``stop``."""

from __future__ import annotations

from collections.abc import Iterator

from rbee_core.backends import Chunk
from rbee_core.messages import FinishReason

__all__ = ["StopMatcher"]


class StopMatcher:
    """Feed text deltas; get back what is safe to emit and whether a stop string was hit.

    Text that could be the start of a stop string is held back until it is clearly not.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self._pending = ""
        self.hit: str | None = None  # the stop string that ended the text, once one did

    def feed(self, text: str) -> tuple[str, bool]:
        if not self._stops:
            return text, False
        pending = self._pending + text
        hits = [(pending.find(s), s) for s in self._stops if s in pending]
        if hits:
            self._pending = ""
            at, self.hit = min(hits)  # the first to appear ends the text
            return pending[:at], True
        hold = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(pending)), 0, -1):
                if pending.endswith(stop[:n]):
                    hold = max(hold, n)
                    break
        self._pending = pending[len(pending) - hold :] if hold else ""
        return pending[: len(pending) - hold], False

    def flush(self) -> str:
        """What is still held back when generation ends without a stop."""
        text, self._pending = self._pending, ""
        return text

    def closing_chunks(
        self,
        finish_reason: FinishReason | str,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
    ) -> Iterator[Chunk]:
        """The end of a generation: any text still held back (unless a stop string ended it),
        then the one chunk that carries the finish reason, the counts, and the stop string
        that ended it if one did."""
        rest = self.flush()
        if rest and finish_reason != FinishReason.STOP:
            yield Chunk(text=rest)
        yield Chunk(
            text="",
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            stop_sequence=self.hit if finish_reason == FinishReason.STOP else None,
        )
