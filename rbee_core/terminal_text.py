"""Text from another party made safe to print on a terminal.

Narration, error messages, hive and model names and a model's answer can come from a peer
or a client: a file name decoded from a URL, a hive's label, tokens a model was steered to
write. Printed raw, an escape sequence in them could clear the screen, rewrite what was
printed before, retitle the window or, on some terminals, answer back as if typed. Here
escape sequences are removed whole and every other control character (C0, DEL, C1) but
newline and tab is dropped; visible text, any script's, is left alone.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: cursor moves, erasing, colours
    # OSC, DCS, SOS, PM, APC: strings up to their terminator (BEL or ST)
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]"  # the other escapes: ESC c (reset), ESC 7, ESC ( B, ...
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but \t and \n


def printable(text: str) -> str:
    """``text`` without escape sequences and control characters, ``\\n`` and ``\\t``
    kept. Safe on pieces of a stream too: an escape cut in two loses its ESC either way."""
    if text.isprintable():  # the usual case, checked in C
        return text
    return _CONTROLS.sub("", _ESCAPES.sub("", text))
