"""``queen-rbee``: the orchestrator daemon.

Usually started by ``rbee-keeper`` when nothing answers at the queen's URL; run it yourself
to keep it (and the workers it starts) alive between jobs.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from typing import Any

from rbee_core.credentials import CMDLINE_KEY_WARNING, reexec_without_key, use_key_file
from rbee_core.errors import RbeeError
from rbee_core.plugins import create_plugin_manager
from rbee_core.private_files import restrict_umask
from rbee_http.auth import API_KEY_ENV, open_bind_refusal
from rbee_http.server import PortInUse, bind, serve, url_of
from rbee_queen.placement import DEFAULT_MAX_RETRIES

__all__ = ["main"]

RAY_ADDRESS_ENV = "RBEE_RAY_ADDRESS"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="queen-rbee", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8500, help="port to listen on (default 8500)")
    p.add_argument(
        "--heartbeat", type=float, default=2.0, help="seconds between hive heartbeats (default 2)"
    )
    p.add_argument(
        "--hive-timeout",
        type=float,
        default=None,
        help="seconds of silence before a hive is unreachable (default 3 heartbeats + 1)",
    )
    key = p.add_mutually_exclusive_group()
    key.add_argument(
        "--api-key-file",
        metavar="PATH",
        help="require 'Authorization: Bearer KEY' on every route but /health, KEY being the "
        "first line of PATH (mode 600; or set RBEE_API_KEY); needed to listen on anything "
        "but loopback",
    )
    key.add_argument(
        "--api-key",
        metavar="KEY",
        help="the same with KEY itself (deprecated: every local user sees it in ps while "
        "the queen starts; use --api-key-file or RBEE_API_KEY)",
    )
    p.add_argument(
        "--job-retention",
        type=float,
        default=7 * 24 * 3600,
        help="seconds to keep finished jobs' records (default 7 days)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=16,
        help="most jobs waiting per model; more are refused with 429 (default 16)",
    )
    p.add_argument(
        "--orphan-timeout",
        type=float,
        default=300.0,
        help="cancel a job whose every listener left this many seconds ago (default 300)",
    )
    p.add_argument(
        "--max-retries",
        type=_non_negative,
        default=DEFAULT_MAX_RETRIES,
        help="move a job whose worker or hive is lost mid-answer to another worker at most "
        f"this many times; it goes on where it was (default {DEFAULT_MAX_RETRIES}; 0: fail "
        "it with the loss)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run a hive on every node of this Ray cluster, its workers as Ray actors "
        "('auto': the cluster `ray start` joined on this machine; also RBEE_RAY_ADDRESS); "
        "needs pip install 'rbee[ray]'",
    )
    p.add_argument(
        "--max-replicas",
        type=_positive,
        default=4,
        metavar="N",
        help="most workers of one model across the hives: the queen starts another (a "
        "replica, on a hive that does not run the model yet if it can) while every worker "
        "of a model is busy and jobs wait (default 4)",
    )
    p.add_argument(
        "--replicas",
        action="append",
        type=_replicas,
        default=[],
        metavar="MODEL=MIN:MAX",
        help="per model: keep at least MIN workers loaded (never unloaded for being idle "
        "or for room) and start at most MAX; repeatable (default 0:--max-replicas)",
    )
    p.add_argument(
        "--load-margin",
        type=_non_negative,
        default=2,
        metavar="N",
        help="a job goes to the worker holding the longest cached prefix of its prompt "
        "unless that worker runs more than N jobs beyond the least busy one, or a quarter "
        "of its slots if more (default 2)",
    )
    p.add_argument(
        "--shutdown-grace",
        type=float,
        default=30.0,
        help="on SIGTERM, seconds running jobs get to finish before they are cancelled",
    )
    return p


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: need a whole number >= 1")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: need a whole number >= 0")
    return value


def _replicas(text: str) -> tuple[str, int, int]:
    from rbee_queen.replicas import parse_replicas

    try:
        return parse_replicas(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.api_key:
        print(f"queen-rbee: {CMDLINE_KEY_WARNING}", file=sys.stderr, flush=True)
        if argv is None:  # started from a command line: start again without the key on it
            reexec_without_key(args.api_key)
        os.environ[API_KEY_ENV] = args.api_key  # the hives and workers it starts share it
    elif args.api_key_file:
        use_key_file(args.api_key_file, "queen-rbee")
    restrict_umask()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.ray:
        if importlib.util.find_spec("ray") is None:
            print(
                "queen-rbee: --ray needs Ray, which is not installed: pip install 'rbee[ray]'",
                file=sys.stderr,
            )
            sys.exit(2)
        os.environ[RAY_ADDRESS_ENV] = args.ray  # read by the rbee_ray plugin
    refusal = open_bind_refusal(
        "queen-rbee", args.host, "Set RBEE_API_KEY or pass --api-key-file PATH."
    )
    if refusal:
        print(refusal, file=sys.stderr)
        sys.exit(2)
    try:
        sock = bind(args.host, args.port)
    except PortInUse as exc:
        print(f"queen-rbee: {exc}", file=sys.stderr)
        sys.exit(1)

    # Imported after binding so a clash on the port fails fast.
    from rbee_queen.app import create_app
    from rbee_queen.orchestrator import Queen

    server: dict[str, Any] = {}

    def stop() -> None:
        server["uvicorn"].should_exit = True

    # asyncio primitives bind to a loop on first use (3.10+), so building outside uvicorn's
    # loop is safe.
    try:
        queen = Queen(
            create_plugin_manager("queen"),
            url=url_of(sock),
            heartbeat=args.heartbeat,
            hive_timeout=args.hive_timeout,
            job_retention=args.job_retention,
            max_queue=args.max_queue,
            orphan_timeout=args.orphan_timeout,
            max_replicas=args.max_replicas,
            replicas={model: (least, most) for model, least, most in args.replicas},
            load_margin=args.load_margin,
            max_retries=args.max_retries,
        )
    except (OSError, RbeeError) as exc:  # its state dir or job store cannot be opened
        why = exc.message if isinstance(exc, RbeeError) else str(exc)
        print(f"queen-rbee: cannot start: {why}", file=sys.stderr)
        sys.exit(1)
    app = create_app(queen, stop, args.host)
    print(f"queen-rbee listening on {url_of(sock)}", file=sys.stderr, flush=True)
    serve(app, sock, lambda s: server.__setitem__("uvicorn", s), grace=args.shutdown_grace)
