"""``rbee-hive``: one per machine. Joins a queen, reports its devices and models, and
starts the workers the queen asks for.

    rbee-hive --queen-url http://QUEEN:8500 --port 8600
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from typing import Any

from litestar import Litestar
from litestar.datastructures import State

from rbee_core.plugins import create_plugin_manager, model_catalog
from rbee_core.units import parse_size
from rbee_hive.hive import Hive
from rbee_hive.routes import HIVE_ROUTES
from rbee_hive.store import ModelStore
from rbee_http.errors import error_handlers
from rbee_http.lifecycle import exit_with_parent
from rbee_http.server import MAX_BODY, PortInUse, bind, guard_for, serve, url_of

__all__ = ["main"]


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rbee-hive", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--queen-url", help="the queen to join (omit to run a hive on its own)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind, and for its workers (default 127.0.0.1; use the "
        "machine's LAN address for a queen on another machine)",
    )
    p.add_argument("--port", type=int, default=8600, help="port (default 8600; 0: any free)")
    p.add_argument("--name", default=socket.gethostname(), help="hive name (default: hostname)")
    p.add_argument("--heartbeat", type=float, default=2.0, help="seconds between heartbeats")
    p.add_argument(
        "--cpu-memory-limit",
        type=_size,
        help="the most RAM its CPU workers may use together, e.g. 8GB (default: all)",
    )
    p.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started it exits (the queen uses this)",
    )
    p.add_argument(
        "--keep-alive",
        type=float,
        default=300.0,
        help="stop a worker idle this many seconds (default 300)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.exit_with_parent:
        exit_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        sock = bind(args.host, args.port)
    except PortInUse as exc:
        print(f"rbee-hive: {exc}", file=sys.stderr)
        sys.exit(1)
    url = url_of(sock)
    pm = create_plugin_manager()
    hive = Hive(
        args.name,
        ModelStore(model_catalog(pm)),
        queen_url=args.queen_url.rstrip("/") if args.queen_url else None,
        url=url,
        heartbeat=args.heartbeat,
        keep_alive=args.keep_alive,
        worker_host=args.host,
        cpu_memory_limit=args.cpu_memory_limit,
    )
    server: dict[str, Any] = {}

    def stop() -> None:
        server["uvicorn"].should_exit = True

    app = Litestar(
        route_handlers=HIVE_ROUTES,
        state=State({"hive": hive, "pm": pm, "stop": stop, "tasks": set()}),
        middleware=guard_for(args.host),
        request_max_body_size=MAX_BODY,
        exception_handlers=error_handlers,
        on_startup=[hive.start],
        on_shutdown=[hive.stop_all],
    )
    print(f"rbee-hive {args.name} listening on {url}", file=sys.stderr, flush=True)
    serve(app, sock, lambda s: server.__setitem__("uvicorn", s))
