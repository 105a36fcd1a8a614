"""How big a worker's KV cache may be, and how many jobs it decodes at once.

Every backend reads its settings here, so one setting means the same on each:

- ``RBEE_KV_CACHE``: a size (``512MiB``, ``4GiB``), or a number of token slots
  (``8192 tokens``), the unit llama.cpp's users know as the context size. Unset, each
  backend picks a default that suits how it allocates (see its ``footprint``).
- ``RBEE_MAX_BATCH`` (default 64): the most jobs decoded together.

Both are declared, and read, in rbee_core.settings; this module holds what their values mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rbee_core.units import parse_size

__all__ = ["DEFAULT_MAX_BATCH", "KvCacheSize", "parse_kv_cache"]

DEFAULT_MAX_BATCH = 64
_TOKENS = re.compile(r"\s*(\d+)\s*(?:tokens?|t)\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class KvCacheSize:
    """A KV cache size as given: in bytes or in token slots (exactly one is set)."""

    bytes: int | None = None
    tokens: int | None = None

    def token_slots(self, bytes_per_token: int) -> int:
        """Token slots of a cache whose tokens take ``bytes_per_token`` each (at least 1)."""
        if self.tokens is not None:
            return max(1, self.tokens)
        assert self.bytes is not None
        return max(1, self.bytes // max(1, bytes_per_token))

    def __str__(self) -> str:
        return f"{self.tokens} tokens" if self.tokens is not None else f"{self.bytes} bytes"


def parse_kv_cache(value: str) -> KvCacheSize:
    """A KV cache size as ``RBEE_KV_CACHE`` gives it (rbee_core.settings reads it); a value
    that is neither raises ``ValueError`` saying what it must be."""
    value = value.strip()
    if tokens := _TOKENS.fullmatch(value):
        return KvCacheSize(tokens=int(tokens[1]))
    try:
        return KvCacheSize(bytes=parse_size(value))
    except ValueError:
        raise ValueError("a size (512MiB, 4GiB) or a number of token slots (8192 tokens)") from None
