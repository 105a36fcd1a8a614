"""Narration on the terminal: every narration the keeper sees goes to stderr, so stdout
carries only the answer (``rbee-keeper infer ... > answer.txt``). Narration is printed
without escape sequences or control characters (``rbee_core.terminal_text``).

Narration that carries progress (a download) is drawn as a progress bar when stderr is a
terminal, and printed as plain lines (already at a sane rate) when it is not.
"""

from __future__ import annotations

import sys
from typing import Any

from rbee_core import hookimpl
from rbee_core.narration import Narration
from rbee_core.terminal_text import printable

__all__ = ["TerminalSink", "echo"]


def echo(text: str, err: bool = False) -> None:
    """``click.echo`` for a line with words of peers in it (names, labels, paths)."""
    import click

    click.echo(printable(text), err=err)


class TerminalSink:
    def __init__(self, quiet: bool = False, bars: bool | None = None) -> None:
        self.quiet = quiet
        self.bars = sys.stderr.isatty() if bars is None else bars
        self._progress: Any = None  # rich.progress.Progress while a bar is shown
        self._task: Any = None

    @hookimpl
    def rbee_narrate(self, narration: Narration) -> None:
        if self.quiet:
            return
        if narration.progress is not None and self.bars:
            self._draw(narration.progress)
            return
        # Peers write narration (a file name decoded from a URL, a hive's label): no escape
        # sequence of theirs reaches the terminal, nor a log of it.
        line = printable(f"[{narration.actor}] {narration.message}")
        if self._progress is not None:
            if narration.action.startswith("download_"):
                self._close()
            else:
                self._progress.console.print(line, highlight=False, markup=False)
                return
        print(line, file=sys.stderr, flush=True)

    def _draw(self, progress: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        if self._progress is None:
            self._progress = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
            )
            self._progress.start()
            self._task = self._progress.add_task("downloading", total=progress.get("total"))
        self._progress.update(self._task, completed=progress["done"], total=progress.get("total"))

    def _close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
