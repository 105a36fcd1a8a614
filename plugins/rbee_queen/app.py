"""Builds the queen's Litestar app from every plugin's routes."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from rbee_http.errors import error_handlers
from rbee_http.server import MAX_BODY, guard_for
from rbee_queen.orchestrator import Queen

__all__ = ["create_app"]


def create_app(queen: Queen, stop: Callable[[], None], host: str = "127.0.0.1") -> Litestar:
    routes = [route for batch in queen.pm.hook.rbee_queen_routes() for route in batch]
    return Litestar(
        route_handlers=routes,
        # Handlers declare ``queen: Queen`` to get the one service object (hookspec
        # rbee_queen_routes); ``state.stop`` is the shutdown route's alone.
        dependencies={"queen": Provide(lambda: queen, use_cache=True, sync_to_thread=False)},
        state=State({"queen": queen, "stop": stop}),
        exception_handlers=error_handlers,
        middleware=guard_for(host),
        request_max_body_size=MAX_BODY,
        logging_config=None,  # the program's own (basicConfig): no queue thread per line
        on_startup=[queen.start],
        on_shutdown=[queen.close],
    )
