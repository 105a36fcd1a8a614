"""Network addresses as rbee's programs give them out and check them (stdlib only, so the
keeper can use it without loading a web server)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["LOOPBACK_NAMES", "is_loopback_host", "is_unspecified", "url_for", "with_host"]

LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}


def is_loopback_host(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_unspecified(host: str) -> bool:
    """``0.0.0.0`` or ``::``: "every address", which nobody can dial."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def with_host(url: str, host: str) -> str:
    """``url`` with its host replaced and its port kept."""
    return url_for(host, urlsplit(url).port or 80)
