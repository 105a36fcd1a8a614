"""Sizes, read and written the same in every program."""

from __future__ import annotations

import re

__all__ = ["human_bytes", "parse_size"]

_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}


def human_bytes(n: float) -> str:
    """``98362432`` -> ``"98.4 MB"`` (decimal units, as download tools show them)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def parse_size(text: str) -> int:
    """``"512MiB"`` -> 536870912, ``"8GB"`` -> 8000000000; plain numbers are bytes.

    Decimal (KB, MB, GB, TB) and binary (KiB, MiB, GiB, TiB) units, any case, the ``B``
    optional. Raise ``ValueError`` saying what a size looks like.
    """
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*", text, re.IGNORECASE)
    if not found:
        raise ValueError(f"not a size: {text!r} (try 512MB, 4GiB or a number of bytes)")
    return int(float(found[1]) * _UNITS[(found[2] or "").lower()])
