"""The hive's HTTP API (docs/api.md): capabilities, workers, models, shutdown.

Long operations (provisioning a model, starting a worker) answer an SSE stream of their
narration, ending with an ``end`` event that carries the result, or an ``error`` event.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from rbee_core.backends import SplittableBackend
from rbee_core.errors import InvalidRequest, RbeeError
from rbee_core.event_log import EventLog
from rbee_core.events import EventType
from rbee_core.messages import WorkerHeartbeat
from rbee_core.model_split import ModelPart, split_refusal
from rbee_core.narration import Narration
from rbee_core.peer_identity import WORKER_TOKEN_HEADER
from rbee_core.plugins import backend_for, backends
from rbee_hive.hive import Hive
from rbee_http.auth import authorized
from rbee_http.sse import read_json, sse_response

__all__ = ["HIVE_ROUTES"]

ACTOR = "rbee-hive"
ModelParam = Annotated[str, QueryParameter(name="model", description="a model reference")]
BackendParam = Annotated[
    str, QueryParameter(name="backend", description="a backend's name; empty: the hive's choice")
]


Work = Callable[[Callable[[Narration], None], asyncio.Event], Awaitable[Any]]
"""An operation: told where its narration goes, and an event set once its asker left."""


def _stream(state: State, work: Work) -> Stream:
    """Run ``work`` in the background; answer its narration and result as SSE. The work goes
    on if the client leaves (a download, a worker start: others may join it); what only the
    client wanted (waiting for room) can watch ``left``. Ends like ``background_stream``: an
    ``end`` event, or one ``error`` event with the error's code."""
    log = EventLog()
    left = asyncio.Event()

    def listener(narration: Narration) -> None:
        if not log.closed:
            log.append(EventType.NARRATION, narration.to_json())

    async def run() -> None:
        try:
            result = await work(listener, left)
            log.append(EventType.END, {"outcome": "completed", **result})
        except RbeeError as exc:
            if not log.closed:
                log.append(EventType.ERROR, exc.to_dict()["error"])
        except Exception as exc:
            if not log.closed:
                log.append(EventType.ERROR, {"code": "internal_error", "message": f"{exc!r}"})
        if not log.closed:
            ended = {"code": "internal_error", "message": "the hive's operation ended early"}
            log.append(EventType.ERROR, ended)

    task = asyncio.create_task(run())
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
    return sse_response(log, on_close=left.set)


@get("/health")
async def health(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    if not authorized(request):  # public: alive, and nothing more, without the key
        return {"status": "ok"}
    hive: Hive = state.hive
    return {"status": "ok", "name": hive.name, "pid": os.getpid()}


ChallengeParam = Annotated[
    str, QueryParameter(name="challenge", description="random text the queen chose")
]


@get("/identity")
async def identity(state: State, challenge: ChallengeParam = "") -> dict[str, str | None]:
    """``?challenge=C``: this hive's name and its proof that it holds the nonce of the
    registration it has under way (rbee_core.peer_identity), which the queen checks before
    taking its URL; ``proof`` is null while it is not registering."""
    hive: Hive = state.hive
    return hive.identity(challenge)


@get("/capabilities")
async def capabilities(state: State) -> dict[str, Any]:
    """Devices (CPU cores and RAM, each GPU), backends, models and workers."""
    hive: Hive = state.hive
    return hive.capabilities(backends(state.pm, hive.engine_options)).to_json()


@get("/workers")
async def list_workers(state: State) -> dict[str, Any]:
    hive: Hive = state.hive
    return {"workers": [w.to_json() for w in hive.worker_list()]}


@post("/workers", status_code=200)
async def spawn_worker(request: Request[Any, Any, Any], state: State) -> Stream:
    """Start a worker: ``{"model", "device", "backend"?, "keep_alive"?, "make_room"?,
    "room_wait"?}``. Provisions the model first and checks that it fits on the device; with
    ``make_room`` (the queen, for a job) idle workers are unloaded for it and busy ones
    waited for, up to ``room_wait`` seconds. ``keep_alive`` -1 pins the worker."""
    hive: Hive = state.hive
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise InvalidRequest("model is required", field="model")
    device = hive.device(str(body.get("device") or "cpu"))  # unknown device: 400 now
    keep_alive = body.get("keep_alive")
    if keep_alive is not None and (
        isinstance(keep_alive, bool)
        or not isinstance(keep_alive, int | float)
        or not (keep_alive > 0 or keep_alive == -1)
    ):
        raise InvalidRequest(
            "keep_alive must be a number of seconds > 0, or -1 to pin the worker",
            field="keep_alive",
        )
    make_room = body.get("make_room", False)
    if not isinstance(make_room, bool):
        raise InvalidRequest("make_room must be true or false", field="make_room")
    room_wait = body.get("room_wait")
    if room_wait is not None and (
        isinstance(room_wait, bool) or not isinstance(room_wait, int | float) or room_wait < 0
    ):
        raise InvalidRequest("room_wait must be a number of seconds >= 0", field="room_wait")
    wanted = body.get("backend") or hive.backend or "auto"
    installed = backends(state.pm, hive.engine_options)
    if not isinstance(wanted, str) or wanted not in (*installed, "auto"):
        raise InvalidRequest(
            f"hive {hive.name} has no backend {wanted!r}; installed: "
            f"{', '.join(sorted(installed)) or 'none'}",
            field="backend",
        )
    raw_parts = body.get("parts") or []
    if not isinstance(raw_parts, list):
        raise InvalidRequest("parts must be a list of model parts", field="parts")
    parts = tuple(ModelPart.from_json(p) for p in raw_parts)
    hive.store.name_of(body["model"])  # unknown model: 4xx now

    async def work(listener: Callable[[Narration], None], left: asyncio.Event) -> dict[str, Any]:
        local = await hive.store.ensure(body["model"], listener)
        backend = backend_for(state.pm, local, wanted, hive.engine_options, device.id)
        worker = await hive.start_worker(
            local,
            device,
            backend,
            listener,
            keep_alive,
            make_room=make_room,
            room_wait=room_wait,
            left=left.is_set,
            parts=parts,
        )
        return {"worker": worker.to_json(hive.name)}

    return _stream(state, work)


@delete("/workers/{worker_id:str}", status_code=200)
async def stop_worker(worker_id: FromPath[str], state: State) -> dict[str, Any]:
    hive: Hive = state.hive
    return (await hive.stop_worker(worker_id)).to_json(hive.name)


@post("/workers/{worker_id:str}/heartbeat", status_code=200)
async def worker_heartbeat(
    worker_id: FromPath[str], request: Request[Any, Any, Any], state: State
) -> dict[str, str]:
    """From the worker itself, with the token its hive gave it (``X-Rbee-Worker-Token``):
    403 ``worker_identity`` without it."""
    hive: Hive = state.hive
    body = await read_json(request)
    hive.worker_heartbeat(
        worker_id,
        WorkerHeartbeat.from_json(body if isinstance(body, dict) else {}),
        request.headers.get(WORKER_TOKEN_HEADER),
    )
    return {"status": "ok"}


@get("/models/footprint")
async def model_footprint(
    state: State, model: ModelParam, backend: BackendParam = ""
) -> dict[str, Any]:
    """What a worker of ``model`` would hold on this hive's CPU, and how it splits: its
    ``total`` bytes, of which ``runtime`` is the process, its ``layers``, and ``free``
    (the CPU's room now); ``split`` is null when its backend can split it across hives,
    else why not. The queen plans a split from it (rbee_core.model_split). Provisions the
    model first (it reads its headers)."""
    hive: Hive = state.hive
    hive.store.name_of(model)
    wanted = backend or hive.backend or "auto"
    local = await hive.store.ensure(model, lambda _: None)
    chosen = backend_for(state.pm, local, wanted, hive.engine_options, "cpu")
    fp = hive.room.footprint(local, "cpu", chosen)
    total, runtime = (fp, 0) if isinstance(fp, int) else (fp.total, fp.runtime)
    splits = isinstance(chosen, SplittableBackend)
    return {
        "hive": hive.name,
        "model": local.name,
        "backend": chosen.name,
        "total": total,
        "runtime": runtime,
        "layers": chosen.layers(local) if isinstance(chosen, SplittableBackend) else 0,
        "part_runtime": chosen.part_runtime if isinstance(chosen, SplittableBackend) else 0,
        "free": hive.device("cpu").free_memory,
        "split": None if splits else split_refusal(chosen.name),
    }


@get("/parts")
async def list_parts(state: State) -> dict[str, Any]:
    """The parts of split models this hive serves to workers on other hives."""
    hive: Hive = state.hive
    return {"parts": hive.part_list()}


@post("/parts", status_code=201)
async def start_part(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Serve a part of a split model: ``{"model", "layers", "bytes", "for_hive",
    "backend"?}``. Answers the part with its ``token``, once: the worker on ``for_hive``
    proves holding it to be let in (the hive keeps it in memory only)."""
    hive: Hive = state.hive
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("a JSON object is required")
    model, for_hive = body.get("model"), body.get("for_hive")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model is required", field="model")
    if not isinstance(for_hive, str) or not for_hive.strip():
        raise InvalidRequest("for_hive is required: the hive of the part's worker", "for_hive")
    counts = {}
    for key in ("layers", "bytes"):
        value = body.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**50:
            raise InvalidRequest(f"{key} must be a whole number > 0", field=key)
        counts[key] = value
    wanted = body.get("backend") or "llamacpp"
    installed = backends(state.pm, hive.engine_options)
    chosen = installed.get(wanted) if isinstance(wanted, str) else None
    if chosen is None:
        raise InvalidRequest(
            f"hive {hive.name} has no backend {wanted!r}; installed: "
            f"{', '.join(sorted(installed)) or 'none'}",
            field="backend",
        )
    if not isinstance(chosen, SplittableBackend):
        raise InvalidRequest(split_refusal(chosen.name), field="backend")
    part = await hive.start_part(model, counts["layers"], counts["bytes"], for_hive, chosen)
    return {"part": part.to_json(hive.name) | {"token": part.token}}


@delete("/parts/{part_id:str}", status_code=200)
async def stop_part(part_id: FromPath[str], state: State) -> dict[str, Any]:
    hive: Hive = state.hive
    return (await hive.stop_part(part_id)).to_json(hive.name)


@get("/models")
async def list_models(state: State) -> dict[str, Any]:
    hive: Hive = state.hive
    models = [e.to_json() | {"hive": hive.name} for e in hive.store.entries()]
    return {"models": models, "known": hive.store.sources.known()}


@get("/models/info")
async def model_info(state: State, model: ModelParam) -> dict[str, Any]:
    hive: Hive = state.hive
    return hive.store.info(model) | {"hive": hive.name}


@post("/models/download", status_code=200)
async def download_model(request: Request[Any, Any, Any], state: State) -> Stream:
    """Provision a model: an SSE stream of its progress."""
    hive: Hive = state.hive
    body = await read_json(request)
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model is required: a model name or reference", field="model")
    hive.store.name_of(model)

    async def work(listener: Callable[[Narration], None], _: asyncio.Event) -> dict[str, Any]:
        local = await hive.store.ensure(model, listener)
        return {"model": hive.store.info(local.name) | {"hive": hive.name}}

    return _stream(state, work)


@delete("/models", status_code=200)
async def remove_model(state: State, model: ModelParam) -> dict[str, Any]:
    hive: Hive = state.hive
    name, _ = hive.store.name_of(model)
    users = [w.id for w in hive.workers.values() if w.alive and w.model == name]
    return hive.store.remove(model, users).to_json() | {"hive": hive.name}


@post("/shutdown", status_code=202)
async def shutdown(state: State) -> dict[str, str]:
    """Stop the hive and every worker it started."""
    state.hive.asked_to_stop = True  # the queen's own choice: it does not ask to drain
    state.stop()
    return {"status": "shutting down"}


HIVE_ROUTES = [
    health,
    identity,
    capabilities,
    list_workers,
    spawn_worker,
    stop_worker,
    worker_heartbeat,
    list_models,
    model_footprint,
    list_parts,
    start_part,
    stop_part,
    model_info,
    download_model,
    remove_model,
    shutdown,
]
