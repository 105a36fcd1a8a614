"""How big a worker's KV cache may be, and how many jobs it decodes at once.

Every backend reads its settings here, so one setting means the same on each:

- ``RBEE_KV_CACHE``: a size (``512MiB``, ``4GiB``), or a number of token slots
  (``8192 tokens``), the unit llama.cpp's users know as the context size. Unset, each
  backend picks a default that suits how it allocates (see its ``footprint``).
- ``RBEE_MAX_BATCH`` (default 64): the most jobs decoded together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rbee_core.errors import InvalidRequest
from rbee_core.units import parse_size

__all__ = ["DEFAULT_MAX_BATCH", "KvCacheSize", "kv_cache_size", "max_batch_setting"]

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


def kv_cache_size(env: Mapping[str, str]) -> KvCacheSize | None:
    """``RBEE_KV_CACHE`` from ``env``, or None when unset (the backend's default applies)."""
    value = env.get("RBEE_KV_CACHE", "").strip()
    if not value:
        return None
    if tokens := _TOKENS.fullmatch(value):
        return KvCacheSize(tokens=int(tokens[1]))
    try:
        return KvCacheSize(bytes=parse_size(value))
    except ValueError:
        raise InvalidRequest(
            f"RBEE_KV_CACHE must be a size (512MiB, 4GiB) or a number of token slots "
            f"(8192 tokens), not {value!r}"
        ) from None


def max_batch_setting(env: Mapping[str, str]) -> int:
    """``RBEE_MAX_BATCH`` from ``env`` (default 64)."""
    value = env.get("RBEE_MAX_BATCH", str(DEFAULT_MAX_BATCH)).strip()
    if not value.isdigit() or int(value) < 1:
        raise InvalidRequest(f"RBEE_MAX_BATCH must be a whole number >= 1, not {value!r}")
    return int(value)
