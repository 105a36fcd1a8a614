"""Readable tables on a terminal, whatever the length of the names in them.

Worker ids, model references and paths can be far longer than a column: padding them
(``f"{x:<16}"``) pushes every later column out of line. Here a cell is shortened in the
middle instead, keeping the head and the tail, because that is where the telling part
of a name is (``hf:author/…/model-q4_k_m.gguf``); a path keeps its file name whole when
it can. ``--json`` output is never shortened: it is for programs, which want the whole. Cells come
from peers (hive names, labels, model names): they are printed without escape sequences or
control characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rbee_core.terminal_text import printable

__all__ = ["Column", "render_table", "shorten_middle"]

ELLIPSIS = "…"


def shorten_middle(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` characters with ``…`` in the middle.

    Text that fits is returned as it is. For a path (it has a ``/``) the file name is kept
    whole when it leaves room for at least one character of the head; otherwise head and
    tail get a half each (the head one more, as it is read first).
    """
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return ELLIPSIS
    room = width - 1  # characters of the text that can stay
    slash = text.rfind("/")
    if 0 <= slash < len(text) - 1:
        tail = text[slash:]  # "/file.gguf"
        if len(tail) < room:
            return text[: room - len(tail)] + ELLIPSIS + tail
    head = (room + 1) // 2
    tail_len = room - head
    return text[:head] + ELLIPSIS + (text[-tail_len:] if tail_len else "")


@dataclass(frozen=True)
class Column:
    """One column: its title, the most characters it may take (``None``: no limit, for the
    last column) and whether numbers are aligned to the right."""

    title: str
    max_width: int | None = None
    right: bool = False


def render_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a table: each column as wide as its widest cell (title included) but
    no wider than its ``max_width``, longer cells shortened in the middle, two spaces
    between columns, no trailing blanks."""
    cells = [
        [
            shorten_middle(printable(str(v)), c.max_width)
            if c.max_width is not None
            else printable(str(v))
            for c, v in zip(columns, row, strict=True)
        ]
        for row in rows
    ]
    widths = [max([len(c.title), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = []
    for row in [[c.title for c in columns], *cells]:
        parts = [
            v.rjust(w) if c.right else v.ljust(w)
            for c, v, w in zip(columns, row, widths, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return lines
