"""Narration: short human sentences that tell the user what the system is doing, as it does it.

Each comes from an ``actor`` (the program: ``queen-rbee``, ``rbee-hive``, ``llm-worker-rbee``,
``rbee-keeper``) with a machine-readable ``action`` and the ``message`` a person reads. The
``rbee_narrate`` hook delivers every narration to all sinks (the job's stream, logs, ...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

__all__ = ["MODEL_CONVERTED", "MODEL_DOWNLOADED", "Narrate", "Narration"]

# Actions another component counts (the queen's metrics), whichever process narrates them.
MODEL_DOWNLOADED = "download_done"
MODEL_CONVERTED = "convert_done"


@dataclass(frozen=True, slots=True)
class Narration:
    actor: str
    action: str
    message: str
    job_id: str | None = None
    # Machine-readable progress of long work, for progress bars: {"done", "total", "unit",
    # "rate"} (``total`` None while unknown). The message says the same for people.
    progress: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The payload of a ``narration`` event (the job id is implied by the stream)."""
        data = asdict(self)
        del data["job_id"]
        if self.progress is None:
            del data["progress"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], job_id: str | None = None) -> Narration:
        """A narration relayed from another process's stream (``to_json``'s payload)."""
        return cls(data["actor"], data["action"], data["message"], job_id, data.get("progress"))


class Narrate(Protocol):
    """``narrate(action, message, progress=None)``: how backends and model sources report
    what they do; the caller fills in the actor and the job."""

    def __call__(
        self, action: str, message: str, progress: dict[str, Any] | None = None
    ) -> None: ...
