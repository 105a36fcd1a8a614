"""A short account of every failed scenario, printed again at the very end of the run.

behave prints a failure where it happens, in the middle of a long run; CI often keeps only
the tail of the output. This keeps, for each failed scenario, the failing step, its error
and the last lines of the logs its programs wrote, and prints them just before behave's
summary, so the tail alone says what went wrong.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FailureReport"]

ERROR_LINES = 20  # of the failing step's error message
LOG_LINES = 8  # the last lines of each log under the scenario's state dir
LOGS = 6  # at most this many logs, the most recently written first
WIDTH = 240  # a longer line is cut


class FailureReport:
    def __init__(self) -> None:
        self.entries: list[str] = []

    def add(self, where: str, step: str, error: str, state_dir: Path) -> None:
        lines = [f"FAILED {where}", f"  step: {step}"]
        lines += [f"  | {_cut(line)}" for line in error.strip().splitlines()[-ERROR_LINES:]]
        for log in _newest_logs(state_dir):
            lines.append(f"  log {log.relative_to(state_dir)} (last {LOG_LINES} lines):")
            try:
                tail = log.read_text(errors="replace").splitlines()[-LOG_LINES:]
            except OSError as exc:  # a process still running may have removed it
                tail = [f"(unreadable: {exc})"]
            lines += [f"  | {_cut(line)}" for line in tail]
        lines.append(f"  state dir kept for inspection: {state_dir}")
        self.entries.append("\n".join(lines))

    def render(self) -> str:
        if not self.entries:
            return ""
        head = f"=== {len(self.entries)} failed scenario(s), again, with their logs ==="
        return "\n\n".join([head, *self.entries])


def _newest_logs(state_dir: Path) -> list[Path]:
    try:
        logs = [p for p in state_dir.rglob("*.log") if p.is_file() and "ray-logs" not in p.parts]
        logs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []
    return logs[:LOGS]


def _cut(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"
