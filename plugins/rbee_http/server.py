"""Run a Litestar app under uvicorn on a socket we bind ourselves.

Binding first lets a daemon ask for port 0 and report the port it got, so a parent never
guesses a free port and races another process for it; it also turns "port in use" into a
clear error before anything else starts.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from rbee_core.addresses import url_for

__all__ = [
    "MAX_BODY",
    "MAX_PATH",
    "PortInUse",
    "bind",
    "bounded",
    "guard_for",
    "serve",
    "stopping",
    "url_of",
]

_server: uvicorn.Server | None = None  # the one this process serves (one per daemon)


def stopping() -> bool:
    """True once this process's server was told to stop (SIGTERM, a shutdown route): the
    cue for streams that never end on their own to end, rather than hold the shutdown for
    its whole grace period."""
    return _server is not None and _server.should_exit


class PortInUse(OSError):
    pass


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off only on
    # sockets that say they are TCP. With it on, a response written in two parts (headers,
    # then body) waits for the client's delayed ACK: 40 ms on every reused connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return url_for(host, port)


def serve(
    app: Any,
    sock: socket.socket,
    on_server: Callable[[uvicorn.Server], None],
    grace: float = 5.0,
) -> None:
    """Serve until ``server.should_exit`` is set (by a route or a signal).

    ``on_server`` receives the server before it starts, so routes can stop it. On SIGTERM
    the server stops accepting connections and gives open ones (streams of running jobs)
    ``grace`` seconds to finish before the app's shutdown handlers run.
    """
    config = uvicorn.Config(
        bounded(app), log_level="warning", lifespan="on", timeout_graceful_shutdown=int(grace)
    )
    global _server
    server = _server = uvicorn.Server(config)
    on_server(server)
    asyncio.run(server.serve(sockets=[sock]))


MAX_BODY = 1 << 20  # 1 MiB: far above any real job request, far below a memory problem
MAX_PATH = 1024  # characters: far above any route's path (names and ids are capped shorter)


def bounded(app: Any) -> Any:
    """``app`` behind a cap on the request's path. Litestar's router keeps its last 1,024
    paths in caches (``lru_cache``), each several times over: paths of 15 KB (all h11 lets
    through) grew a queen by 30 MB, on public routes too. A longer path matches no route,
    so it is a 404 before the router sees it."""
    from rbee_http.errors import send_error

    async def capped(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "websocket" and len(path) > MAX_PATH:
            await send({"type": "websocket.close", "code": 1008})  # refused before accepting
            return
        if scope["type"] == "http" and len(path) > MAX_PATH:
            message = f"no route has a path this long ({len(path)} characters; at most {MAX_PATH})"
            await send_error(send, 404, "not_found", message)
            return
        await app(scope, receive, send)

    return capped


def guard_for(host: str) -> list[Any]:
    """The middleware every daemon runs: the API key, and the Host check on loopback."""
    from rbee_http.auth import Guard, api_key, is_loopback_host

    return [Guard(api_key(), loopback_only=is_loopback_host(host))]
