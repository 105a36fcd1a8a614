"""rbee_core.terminal_text.printable: nothing a peer writes can drive the terminal."""

from __future__ import annotations

import pytest

from rbee_core.terminal_text import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, é, 日本語, emoji 🐝", "plain text, é, 日本語, emoji 🐝"),
        ("lines\nand\ttabs", "lines\nand\ttabs"),
        ("model\x1b[2J\x1b[Hname.gguf", "modelname.gguf"),  # clear screen, cursor home
        ("\x1b[31mred\x1b[0m", "red"),  # colours
        ("\x1b]0;new title\x07after", "after"),  # window title (OSC ... BEL)
        ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),  # hyperlink (OSC ... ST)
        ("\x1bPq#0;2;0;0;0\x1b\\x", "x"),  # DCS (sixel) up to ST
        ("reset\x1bc", "reset"),  # ESC c: full reset
        ("\x1b(Bcharset", "charset"),
        ("\x9b2Jeight-bit CSI", "eight-bit CSI"),
        ("over\rwrite", "overwrite"),  # a carriage return rewrites the line
        ("bell\x07 nul\x00 del\x7f c1\x85", "bell nul del c1"),
        ("\x1b]0;unterminated", "0;unterminated"),  # its ESC goes, the text stays visible
    ],
)
def test_escapes_and_control_characters_are_removed(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_an_escape_cut_across_pieces_of_a_stream_loses_its_esc() -> None:
    pieces = ["ab\x1b", "[2Jcd"]
    assert "\x1b" not in "".join(printable(p) for p in pieces)


def test_every_control_character_but_newline_and_tab_is_dropped() -> None:
    controls = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))
    assert printable(controls) == "\t\n"
