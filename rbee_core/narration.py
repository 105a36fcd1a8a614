"""Narration: short human sentences that tell the user what the system is doing, as it does it.

Each comes from an ``actor`` (the program: ``queen-rbee``, ``rbee-hive``, ``llm-worker-rbee``,
``rbee-keeper``) with a machine-readable ``action`` and the ``message`` a person reads. The
``rbee_narrate`` hook delivers every narration to all sinks (the job's stream, logs, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Narrate", "Narration"]


@dataclass(frozen=True, slots=True)
class Narration:
    actor: str
    action: str
    message: str
    job_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The payload of a ``narration`` event (the job id is implied by the stream)."""
        data = asdict(self)
        del data["job_id"]
        return data


Narrate = Callable[[str, str], None]
"""``narrate(action, message)``: what backends and model sources are handed to report progress;
the caller fills in the actor and job."""
