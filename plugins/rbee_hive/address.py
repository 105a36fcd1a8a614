"""Where the queen reaches a hive bound to every address.

A hive bound to ``0.0.0.0`` or ``::`` cannot advertise that: a queen that dials ``0.0.0.0``
reaches itself. It advertises ``--advertise-url`` if given, else the address of its own end
of a connection to the queen: the address the queen's network sees.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

__all__ = ["local_address_towards"]


def local_address_towards(url: str, timeout: float = 5.0) -> str:
    """This machine's address on the route to ``url``: the local end of a TCP connection to
    it. Raises ``OSError`` when it cannot be reached."""
    parts = urlsplit(url)
    if parts.hostname is None:
        raise OSError(f"{url!r} names no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname, port), timeout=timeout) as conn:
        return str(conn.getsockname()[0])
