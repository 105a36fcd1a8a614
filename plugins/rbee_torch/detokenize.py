"""Incremental detokenisation: turn a growing list of token ids into text deltas.

Decoding tokens one at a time breaks multi-byte characters (a token can hold half of an
emoji) and merges (a token's text can depend on its neighbours). Decode a short window
instead, and emit only text that is final: it grew, and it does not end in U+FFFD.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Detokenizer"]


class Detokenizer:
    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix = 0  # start of the window decoded for context
        self._read = 0  # end of what has been emitted

    def push(self, token_id: int) -> str:
        """Add one token; return the text it completes (maybe empty)."""
        self._ids.append(token_id)
        decode = self._tokenizer.decode
        before = decode(self._ids[self._prefix : self._read], skip_special_tokens=True)
        after = decode(self._ids[self._prefix :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return str(after[len(before) :])
        return ""
