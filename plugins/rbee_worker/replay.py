"""Generating a job again after its first worker was lost mid-answer: the queen sends the
text the job's client already has (``replay``), and the worker generates the job from its
start as before, checks that what it writes is that text, character for character, and
sends only what comes after it. A greedy or seeded job decodes the same tokens on any
worker of the same backend, quantization and device type, so the client's stream goes on
as if nothing happened; anything else ends the job with ``answer_diverged``, never a
silently different answer."""

from __future__ import annotations

from rbee_core.errors import AnswerDiverged, InvalidRequest
from rbee_core.job_request import MAX_PROMPT_CHARS

__all__ = ["MAX_REPLAY_CHARS", "Replay", "replay_from"]

# At most max_tokens (4,096) tokens were sent: a generous bound on their text.
MAX_REPLAY_CHARS = max(MAX_PROMPT_CHARS, 4096 * 64)


def replay_from(body: object) -> Replay | None:
    """Take the ``replay`` field out of a ``/generate`` body (a job request's fields, and
    this one the queen adds): the text already sent, or None."""
    if not isinstance(body, dict) or "replay" not in body:
        return None
    text = body.pop("replay")
    if not isinstance(text, str) or len(text) > MAX_REPLAY_CHARS:
        raise InvalidRequest(
            f"replay must be the text already sent, at most {MAX_REPLAY_CHARS:,} characters",
            field="replay",
        )
    return Replay(text) if text else None


class Replay:
    """The text the client already has, and how much of it was generated again so far."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.matched = 0  # characters of ``text`` generated again

    @property
    def done(self) -> bool:
        return self.matched >= len(self.text)

    def after(self, text: str) -> str:
        """What of a newly generated ``text`` the client does not have yet; raises
        ``AnswerDiverged`` where it differs from what the client has."""
        if self.done:
            return text
        had = self.text[self.matched : self.matched + len(text)]
        wrote = text[: len(had)]
        if wrote != had:
            i = next(i for i, (a, b) in enumerate(zip(had, wrote, strict=True)) if a != b)
            at = self.matched + i
            raise AnswerDiverged(
                f"generating the job again after its worker was lost, this worker wrote "
                f"{wrote[i : i + 24]!r} at character {at:,} where the client already has "
                f"{had[i : i + 24]!r}: its answer would differ",
                at=at,
            )
        self.matched += len(had)
        return text[len(had) :]

    def ended(self) -> None:
        """The generation ended: it must have written all the text the client has."""
        if not self.done:
            raise AnswerDiverged(
                f"generating the job again after its worker was lost, this worker stopped "
                f"after {self.matched:,} of the {len(self.text):,} characters the client "
                "already has: its answer would differ",
                at=self.matched,
            )
