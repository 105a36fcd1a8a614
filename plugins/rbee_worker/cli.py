"""``llm-worker-rbee``: load one model, then serve it until told to stop.

Normally started by a hive, which reads its start-up lines on stdout (see protocol.py).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rbee_core.addresses import is_unspecified, with_host
from rbee_core.credentials import API_KEY_FILE_HELP, use_key_file
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import RbeeError
from rbee_core.messages import WorkerHeartbeat, WorkerReady
from rbee_core.model_split import ModelPart
from rbee_core.models import LocalModel
from rbee_core.narration import Narration
from rbee_core.peer_identity import WORKER_PARTS_ENV, WORKER_TOKEN_ENV, WORKER_TOKEN_HEADER
from rbee_core.plugins import backend_for, create_plugin_manager, model_catalog
from rbee_core.private_files import restrict_umask
from rbee_http.auth import auth_headers, open_bind_refusal
from rbee_http.lifecycle import exit_with_parent
from rbee_http.server import PortInUse, bind, serve, url_of
from rbee_worker.app import create_app
from rbee_worker.protocol import StdoutNarrationSink, announce
from rbee_worker.runner import Runner

__all__ = ["main"]

ACTOR = "llm-worker-rbee"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llm-worker-rbee", description=__doc__)
    p.add_argument("--model", required=True, help="model name or reference, e.g. smollm2-135m")
    p.add_argument(
        "--backend",
        default="auto",
        help="inference backend (default: auto, the first that loads the model)",
    )
    p.add_argument("--model-path", help="the model's files, when already on this machine")
    p.add_argument("--model-format", default="gguf", help="format of --model-path")
    p.add_argument("--device", default="auto", help="cpu, cuda:N, or auto (default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--advertise-host",
        help="the address to give out when --host is every address (0.0.0.0): its hive's",
    )
    p.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    p.add_argument("--worker-id", default="", help="the id the hive gave this worker")
    p.add_argument("--hive-url", default="", help="the hive to send heartbeats to")
    p.add_argument("--heartbeat", type=float, default=2.0, help="seconds between heartbeats")
    p.add_argument(
        "--api-key-file",
        metavar="PATH",
        help=API_KEY_FILE_HELP + " (a hive gives its workers its own key)",
    )
    p.add_argument(
        "--standalone",
        action="store_true",
        help="keep running when the process that started this worker exits",
    )
    return p


def _heartbeat_hive(hive_url: str, worker_id: str, interval: float, runner: Runner) -> None:
    """Tell the hive every ``interval`` seconds that this worker lives, and how busy it is,
    with the token the hive gave this worker (its environment, taken out of it here)."""
    import httpx

    headers = auth_headers() | {WORKER_TOKEN_HEADER: os.environ.pop(WORKER_TOKEN_ENV, "")}

    def beat() -> None:
        with httpx.Client(timeout=5.0, headers=headers) as http:
            while True:
                beat = WorkerHeartbeat(
                    busy=runner.busy,
                    running=runner.running,
                    waiting=runner.waiting,
                    jobs_served=runner.jobs_served,
                    idle_since=runner.idle_since,
                )
                with contextlib.suppress(httpx.HTTPError):
                    http.post(f"{hive_url}/workers/{worker_id}/heartbeat", json=beat.to_json())
                time.sleep(interval)

    threading.Thread(target=beat, name="heartbeat", daemon=True).start()


def _parts() -> tuple[ModelPart, ...]:
    """The parts of a split model this worker reaches (its hive's JSON, tokens included),
    taken out of the environment."""
    raw = os.environ.pop(WORKER_PARTS_ENV, "")
    if not raw:
        return ()
    try:
        given = json.loads(raw)
    except ValueError:
        given = None
    if not isinstance(given, list):
        raise RbeeError(f"{WORKER_PARTS_ENV} must be a JSON list of model parts")
    return tuple(ModelPart.from_json(p) for p in given)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.api_key_file:
        use_key_file(args.api_key_file, ACTOR)
    restrict_umask()
    refusal = open_bind_refusal("llm-worker-rbee", args.host)
    if refusal:
        announce("error", message=refusal)
        print(refusal, file=sys.stderr)
        sys.exit(2)
    if not args.standalone:
        exit_with_parent()
    pm = create_plugin_manager("worker")
    pm.register(StdoutNarrationSink(), name="worker-stdout-narration")

    def narrate(action: str, message: str, progress: dict[str, Any] | None = None) -> None:
        pm.hook.rbee_narrate(narration=Narration(ACTOR, action, message, progress=progress))

    try:
        # Read once, here: a bad value fails before the model loads, naming the variable.
        options = dataclasses.replace(EngineOptions.from_env(), parts=_parts())
        if args.model_path:  # the hive provisioned the files already
            local = LocalModel(args.model, Path(args.model_path), args.model_format)
        else:
            local = model_catalog(pm).provision(args.model, narrate)
        backend = backend_for(pm, local, args.backend, options, args.device)
        loaded = backend.load(local, args.device, narrate)
        sock = bind(args.host, args.port)
    except (RbeeError, PortInUse) as exc:
        announce("error", message=str(exc))
        sys.exit(1)
    except Exception as exc:  # a backend failing to load must still tell its parent why
        announce("error", message=f"{type(exc).__name__}: {exc}")
        raise

    runner = Runner(loaded)
    server: dict[str, Any] = {}

    def stop() -> None:
        server["uvicorn"].should_exit = True

    app = create_app(runner, args.model, backend.name, stop, args.host)
    if args.hive_url and args.worker_id:
        _heartbeat_hive(args.hive_url, args.worker_id, args.heartbeat, runner)
    url = url_of(sock)
    if args.advertise_host and is_unspecified(args.host):
        url = with_host(url, args.advertise_host)
    ready = WorkerReady(
        url=url,
        pid=os.getpid(),
        device=loaded.device,
        slots=runner.slots,
        backend=backend.name,
        quantization=runner.quantization,
    )
    announce("ready", **ready.to_json())
    serve(app, sock, lambda s: server.__setitem__("uvicorn", s))
