"""``rbee-hive``: one per machine. Joins a queen, reports its devices and models, and
starts the workers the queen asks for.

    rbee-hive --queen-url http://QUEEN:8500 --host 0.0.0.0 --port 8600

Listening beyond loopback needs the cluster's API key, in RBEE_API_KEY or a file given with
--api-key-file: the hive sends it to the queen, asks it of every caller, and its workers
share it.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

from litestar import Litestar
from litestar.datastructures import State

from rbee_core.addresses import is_unspecified
from rbee_core.credentials import API_KEY_FILE_HELP, use_key_file
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import InvalidRequest
from rbee_core.messages import check_hive_name
from rbee_core.paths import logs_dir
from rbee_core.peer_identity import HIVE_LAUNCH_TOKEN_ENV
from rbee_core.plugins import create_plugin_manager, model_catalog
from rbee_core.private_files import restrict_umask
from rbee_core.settings import BACKEND
from rbee_core.units import parse_size
from rbee_hive.detach import detach
from rbee_hive.hive import Hive
from rbee_hive.routes import HIVE_ROUTES
from rbee_http.auth import open_bind_refusal
from rbee_http.errors import error_handlers
from rbee_http.lifecycle import exit_with_parent
from rbee_http.server import MAX_BODY, PortInUse, bind, guard_for, serve, url_of
from rbee_models.store import ModelStore

__all__ = ["main"]


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"a label is KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rbee-hive", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--queen-url", help="the queen to join (omit to run a hive on its own)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind, and for its workers (default 127.0.0.1; for a queen on "
        "another machine, this machine's LAN address or 0.0.0.0, with RBEE_API_KEY set)",
    )
    p.add_argument("--api-key-file", metavar="PATH", help=API_KEY_FILE_HELP)
    p.add_argument(
        "--advertise-url",
        help="the URL the queen reaches this hive at (default: the bound address, or for "
        "0.0.0.0 the address of this machine's end of its connection to the queen)",
    )
    p.add_argument(
        "--detach",
        action="store_true",
        help="run in the background, logging to the state dir; exit once it joined the "
        "queen (code 0) or with the reason it could not (code 1)",
    )
    p.add_argument("--port", type=int, default=8600, help="port (default 8600; 0: any free)")
    p.add_argument("--name", default=socket.gethostname(), help="hive name (default: hostname)")
    p.add_argument("--heartbeat", type=float, default=2.0, help="seconds between heartbeats")
    p.add_argument(
        "--label",
        type=_label,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="say something of this hive to the queen, shown by `hive list` (repeatable)",
    )
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
        help="stop a worker idle this many seconds (default 300; -1: never, and never "
        "unload one to make room for another model)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.api_key_file:
        use_key_file(args.api_key_file, "rbee-hive")
    restrict_umask()
    refusal = open_bind_refusal("rbee-hive", args.host)
    if refusal:
        print(refusal, file=sys.stderr)
        sys.exit(2)
    if args.advertise_url:
        host = urlsplit(args.advertise_url).hostname
        if not args.advertise_url.startswith(("http://", "https://")) or not host:
            parser.error(f"--advertise-url {args.advertise_url!r} is not an http:// URL")
        if is_unspecified(host):
            parser.error(f"--advertise-url {args.advertise_url!r}: nobody can dial {host}")
    try:
        check_hive_name(args.name, "--name")
    except InvalidRequest as exc:
        parser.error(exc.message)
    if args.detach and not args.queen_url:
        parser.error("--detach reports joining a queen: give --queen-url")
    if args.exit_with_parent:
        exit_with_parent()
    try:
        sock = bind(args.host, args.port)
    except PortInUse as exc:
        print(f"rbee-hive: {exc}", file=sys.stderr)
        sys.exit(1)
    url = url_of(sock)
    on_joined = None
    if args.detach:  # before any thread starts: fork copies only the calling one
        report = detach(logs_dir() / f"hive-{args.name}.log")
        queen = args.queen_url

        def on_joined(error: str | None) -> None:
            report(error, f"{queen} as {args.name} ({hive.url})")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    pm = create_plugin_manager("hive")
    hive = Hive(
        args.name,
        ModelStore(model_catalog(pm)),
        queen_url=args.queen_url.rstrip("/") if args.queen_url else None,
        url=url,
        heartbeat=args.heartbeat,
        keep_alive=args.keep_alive,
        worker_host=args.host,
        cpu_memory_limit=args.cpu_memory_limit,
        advertise_url=args.advertise_url.rstrip("/") if args.advertise_url else None,
        on_joined=on_joined,
        labels=dict(args.label),
        launch=pm.hook.rbee_worker_launcher(),
        backend=BACKEND.read(),
        engine_options=EngineOptions.from_env(),
        # Taken out of the environment: its workers must not inherit it.
        launch_token=os.environ.pop(HIVE_LAUNCH_TOKEN_ENV, None),
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
        on_shutdown=[hive.leave, hive.stop_all],
    )
    print(f"rbee-hive {args.name} listening on {url}", file=sys.stderr, flush=True)
    serve(app, sock, lambda s: server.__setitem__("uvicorn", s))
