"""Who may talk to an rbee daemon: an API key, and a Host check against DNS rebinding.

- With ``RBEE_API_KEY`` set, every route but ``/health`` and those marked
  ``opt={"public": True}`` (files that hold no data, such as the console's page) needs
  ``Authorization: Bearer <key>``, compared in constant time. Queens, hives and workers share
  the key: each sends it on the calls it makes, each asks for it on the calls it answers.
- A daemon bound to loopback answers only requests whose ``Host`` is a loopback name, so a web
  page on a rebinding domain cannot reach it through the user's browser.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from rbee_core.addresses import is_loopback_host
from rbee_core.credentials import API_KEY_ENV, api_key, auth_headers

__all__ = [
    "API_KEY_ENV",
    "Guard",
    "api_key",
    "auth_headers",
    "is_loopback_host",
    "open_bind_refusal",
]

OPEN_PATHS = {"/health"}


def open_bind_refusal(program: str, host: str, how: str = "Set RBEE_API_KEY.") -> str | None:
    """Why ``program`` must not listen on ``host``: beyond loopback, every daemon needs an
    API key, or anyone who can reach it could run jobs (and a hive or worker would run them
    for anyone). ``None`` when it may."""
    if is_loopback_host(host) or api_key():
        return None
    return (
        f"{program}: refusing to listen on {host} without an API key: anyone who can reach it "
        f"could run jobs. {how}"
    )


def _hostname(raw: str) -> str:
    raw = raw.strip().lower()
    if raw.startswith("["):  # [::1]:8500
        return raw[1 : raw.index("]")] if "]" in raw else raw
    return raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw


class Guard(ASGIMiddleware):
    def __init__(self, key: str | None, loopback_only: bool) -> None:
        self.key = key.encode() if key else None
        self.loopback_only = loopback_only

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        host = headers.get("host", b"").decode("latin-1")
        if self.loopback_only and not is_loopback_host(_hostname(host)):
            await _refuse(
                send,
                403,
                "bad_host",
                f"this daemon listens on loopback only; a "
                f"request for host {host!r} is refused (DNS rebinding)",
            )
            return
        if self.key is not None and not _public(scope):
            given = headers.get("authorization", b"")
            if not hmac.compare_digest(given, b"Bearer " + self.key):
                await _refuse(
                    send,
                    401,
                    "unauthorized",
                    "a valid 'Authorization: Bearer <API key>' header is required (RBEE_API_KEY)",
                )
                return
        await next_app(scope, receive, send)


def _public(scope: Scope) -> bool:
    handler = scope.get("route_handler")  # set by the router before any middleware runs
    return scope["path"] in OPEN_PATHS or bool(handler is not None and handler.opt.get("public"))


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    start: Any = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
