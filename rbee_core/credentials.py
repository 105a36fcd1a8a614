"""The cluster's API key, as every rbee program reads and sends it (stdlib only: the keeper
uses it without loading a web framework)."""

from __future__ import annotations

import os

__all__ = ["API_KEY_ENV", "api_key", "auth_headers"]

API_KEY_ENV = "RBEE_API_KEY"


def api_key() -> str | None:
    return os.environ.get(API_KEY_ENV) or None


def auth_headers() -> dict[str, str]:
    """Headers for calls to another rbee daemon: the key, if this process has one."""
    key = api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}
