"""A part of a split model: llama.cpp's RPC server on loopback, behind the guard
(rpc_guard.py) on the hive's address. The hive starts one per part a queen asks of it
(``rbee-hive``'s ``POST /parts``), with the part's token in its environment, never argv.

It prints one JSON line when it serves, ``{"type": "ready", "port": P}``, and ends on its
own once its worker is gone: when no connection has been open for ``--linger`` seconds
after the first one (llama.cpp holds one for as long as the model is loaded), or when none
came within ``--first-wait`` seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import threading
import time

from rbee_core.peer_identity import PART_TOKEN_ENV
from rbee_llamacpp.rpc_guard import Guard

__all__ = ["main"]

log = logging.getLogger("rbee.part")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rbee_llamacpp.part",
        description="Serve this machine's memory and CPU to a worker on another hive "
        "(llama.cpp's RPC server, behind a token check).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address the guard binds to")
    parser.add_argument("--port", type=int, default=0, help="its port (0: any free one)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: every CPU)")
    parser.add_argument("--linger", type=float, default=10.0)
    parser.add_argument("--first-wait", type=float, default=600.0)
    return parser


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            # A probe llama.cpp's server takes for a client that left at once.
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    token = os.environ.pop(PART_TOKEN_ENV, "")
    if len(token) < 16:
        print(json.dumps({"type": "error", "message": f"{PART_TOKEN_ENV} is not set"}))
        sys.exit(2)
    # The same kernels as the worker's own layers (rbee_llamacpp.library._init).
    os.environ.setdefault("GGML_CPU_TILED_MM", "0")
    from rbee_llamacpp.library import serve_rpc

    # llama.cpp's server writes its banner to fd 1: stdout is the hive's, for the one line
    # below, so the C side gets stderr instead.
    ready = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    threads = args.threads or len(os.sched_getaffinity(0))
    inner = _free_loopback_port()
    server = threading.Thread(
        target=serve_rpc, args=(f"127.0.0.1:{inner}", threads), name="rpc", daemon=True
    )
    server.start()
    _wait_listening(inner, 30)
    guard = Guard(args.host, args.port, token, inner)
    print(json.dumps({"type": "ready", "port": guard.port, "pid": os.getpid()}), file=ready)
    ready.close()
    started = time.monotonic()
    while True:
        time.sleep(0.5)
        idle = guard.idle_for()
        if idle is None and time.monotonic() - started > args.first_wait:
            log.info("no worker came within %.0f s; stopping", args.first_wait)
            break
        if idle is not None and idle > args.linger:
            log.info("its worker is gone (no connection for %.0f s); stopping", idle)
            break
    guard.close()
    os._exit(0)  # the RPC server's thread never returns


if __name__ == "__main__":
    main()
