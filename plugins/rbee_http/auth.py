"""Who may talk to an rbee daemon: an API key, a Host check against DNS rebinding, and no
state change a web page could forge.

- With ``RBEE_API_KEY`` set, every route but ``/health`` and those marked
  ``opt={"public": True}`` (files that hold no data, such as the console's page) needs
  ``Authorization: Bearer <key>`` (or ``x-api-key: <key>``, as Anthropic's clients send
  it), compared in constant time. Queens, hives and workers share
  the key: each sends it on the calls it makes, each asks for it on the calls it answers.
  ``/health`` tells a caller without the key only that the daemon is alive (``authorized``).
- A daemon bound to loopback answers only requests whose ``Host`` is a loopback name, so a web
  page on a rebinding domain cannot reach it through the user's browser.
- A request that changes state (POST, PUT, PATCH, DELETE), keyed daemon or not, is refused
  when a browser says it comes from another page: an ``Origin`` that is not the daemon's own
  (the scheme and ``Host`` it was addressed with), or ``Sec-Fetch-Site`` ``cross-site`` or
  ``same-site`` (another port of the same host is same-site). And its body must be declared
  ``application/json`` (a POST's always, even an empty one): a page can send text/plain,
  form or multipart bodies, or none, to any address without a CORS preflight, but never
  JSON, so nothing a page forges reaches a handler even from a browser that sends neither
  header.
"""

from __future__ import annotations

import hmac
from typing import Any, cast
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from rbee_core.addresses import is_loopback_host
from rbee_core.credentials import API_KEY_ENV, api_key, auth_headers
from rbee_http.errors import send_error

__all__ = [
    "API_KEY_ENV",
    "ERROR_BODY_OPT",
    "JSON_TYPE",
    "Guard",
    "api_key",
    "auth_headers",
    "authorized",
    "is_loopback_host",
    "open_bind_refusal",
]

OPEN_PATHS = {"/health"}
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPE = "application/json"
DEFAULT_PORTS = {"http": 80, "https": 443}
_AUTHORIZED = "rbee.authorized"  # the Guard's verdict on the key, in the request's scope
ERROR_BODY_OPT = "error_body"
"""The ``opt`` key by which a route (or its router) words the Guard's refusals in its API's
own error shape: a function ``(status, code, message) -> body``; rbee's shape without it."""


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


def authorized(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether the caller showed the API key, or none is needed: what a public route may
    tell it. False for a request the Guard did not see."""
    return bool(cast("dict[str, Any]", connection.scope).get(_AUTHORIZED))


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
                scope,
                send,
                403,
                "bad_host",
                f"this daemon listens on loopback only; a "
                f"request for host {_short(host)} is refused (DNS rebinding)",
            )
            return
        changing = scope.get("method") in STATE_CHANGING  # a websocket has none
        if changing and (why := _cross_origin(scope, headers, host)):
            await _refuse(scope, send, 403, "cross_origin", why)
            return
        trusted = self.key is None or _shows_key(headers, self.key)
        if not trusted and not _public(scope):
            await _refuse(
                scope,
                send,
                401,
                "unauthorized",
                "a valid 'Authorization: Bearer <API key>' header is required (RBEE_API_KEY; "
                "or 'x-api-key: <API key>')",
            )
            return
        if changing and (why := _not_json(scope, headers)):
            await _refuse(scope, send, 415, "bad_content_type", why)
            return
        cast("dict[str, Any]", scope)[_AUTHORIZED] = trusted
        await next_app(scope, receive, send)


def _shows_key(headers: dict[str, bytes], key: bytes) -> bool:
    """Whether the request carries the key: ``Authorization: Bearer <key>``, or
    ``x-api-key: <key>`` as Anthropic's clients send it. A page cannot make a browser send
    either header to another origin without a CORS preflight, which no daemon grants."""
    bearer = hmac.compare_digest(headers.get("authorization", b""), b"Bearer " + key)
    return hmac.compare_digest(headers.get("x-api-key", b""), key) or bearer


def _public(scope: Scope) -> bool:
    handler = scope.get("route_handler")  # set by the router before any middleware runs
    return scope["path"] in OPEN_PATHS or bool(handler is not None and handler.opt.get("public"))


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the port filled in; None for one that is not."""
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number
        return None
    if not parts.hostname or port is None:
        return None
    return scheme.lower(), parts.hostname, port


def _cross_origin(scope: Scope, headers: dict[str, bytes], host: str) -> str | None:
    """Why a browser's request from another page is refused, or None for one that is not."""
    site = headers.get("sec-fetch-site", b"").decode("latin-1").strip().lower()
    raw = headers.get("origin")
    sent = raw.decode("latin-1").strip() if raw is not None else None
    if sent is not None:
        # Behind a TLS proxy on this machine, uvicorn takes the scheme from X-Forwarded-Proto.
        scheme = str(scope.get("scheme", "http"))
        own = _origin(scheme, host)
        parts = urlsplit(sent)  # "null" (a sandboxed frame, a file) has no scheme: refused
        theirs = None if parts.path or parts.query else _origin(parts.scheme, parts.netloc)
        if theirs is None or theirs != own:
            return (
                f"a request from origin {_short(sent)} may not change anything here: this "
                f"daemon takes such requests from its own origin "
                f"({_short(f'{scheme}://{host}')}) only"
            )
    if site in ("cross-site", "same-site"):
        where = f" from origin {_short(sent)}" if sent is not None else ""
        return (
            f"a request the browser marks {site} (Sec-Fetch-Site){where} may not change "
            f"anything here: this daemon takes such requests from its own origin only"
        )
    return None


def _not_json(scope: Scope, headers: dict[str, bytes]) -> str | None:
    """Why a state-changing request's body is refused: it is not declared JSON. A DELETE
    (or PUT, PATCH) without a body needs no type: no page can send those cross-origin
    without a CORS preflight, which no rbee daemon grants."""
    raw = headers.get("content-type")
    if raw is not None and raw.split(b";", 1)[0].strip().lower() == JSON_TYPE.encode():
        return None
    method = str(scope.get("method", ""))
    length = headers.get("content-length", b"").strip()
    if method != "POST" and "transfer-encoding" not in headers and length in (b"", b"0"):
        return None
    sent = "none" if raw is None else _short(raw.decode("latin-1"))
    return (
        f"{method} {_cut(scope['path'])} takes a JSON body: send "
        f"'Content-Type: {JSON_TYPE}' (got {sent})"
    )


def _cut(text: str, limit: int = 100) -> str:
    """``text`` cut to ``limit`` characters: an error never echoes a whole header or path a
    client sent."""
    return text if len(text) <= limit else text[:limit] + "..."


def _short(text: str) -> str:
    return repr(_cut(text))


async def _refuse(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
    handler = scope.get("route_handler")
    shape = handler.opt.get(ERROR_BODY_OPT) if handler is not None else None
    body = shape(status, code, message) if shape is not None else None
    await send_error(send, status, code, message, extra, body)
