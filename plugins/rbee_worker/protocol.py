"""What a worker tells the process that started it, one JSON object per line on stdout.

``{"type": "narration", "action", "message"}`` while it provisions and loads the model,
then ``{"type": "ready", "url", "pid", "device", "slots", "backend", "quantization"}`` once
it serves (``slots``: how many jobs it runs at once; ``quantization``: how its weights are
held, ``Q4_K_M``, ``bf16``...), or ``{"type": "error", "message"}``
if it cannot start. The hive reads these lines and relays the narration into the job that
asked for the worker, so the user sees the model load as it happens.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rbee_core import hookimpl
from rbee_core.narration import Narration

__all__ = ["StdoutNarrationSink", "announce"]


def announce(type_: str, **fields: Any) -> None:
    print(json.dumps({"type": type_, **fields}), file=sys.stdout, flush=True)


class StdoutNarrationSink:
    """A narration sink for the worker process: narration goes to its parent."""

    @hookimpl
    def rbee_narrate(self, narration: Narration) -> None:
        announce("narration", **narration.to_json())
