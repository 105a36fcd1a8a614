"""Narration on the terminal: every narration the keeper sees goes to stderr, so stdout
carries only the answer (``rbee-keeper infer ... > answer.txt``)."""

from __future__ import annotations

import sys

from rbee_core import hookimpl
from rbee_core.narration import Narration

__all__ = ["TerminalSink"]


class TerminalSink:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    @hookimpl
    def rbee_narrate(self, narration: Narration) -> None:
        if not self.quiet:
            print(f"[{narration.actor}] {narration.message}", file=sys.stderr, flush=True)
