"""The queen's model API: what each hive has, and provisioning with live progress.

Models are named in the body or query (``?model=``), never in the path: references such as
``hf:org/name`` and URLs contain slashes.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent

from rbee_core.errors import InvalidRequest, RbeeError
from rbee_core.event_log import EventLog
from rbee_core.events import EventType
from rbee_core.narration import Narration
from rbee_http.sse import read_json, sse_response
from rbee_queen.orchestrator import Queen

__all__ = ["MODEL_ROUTES"]

ModelParam = Annotated[str, QueryParameter(name="model", description="a model reference")]


@get("/models")
async def list_models(state: State) -> dict[str, Any]:
    """Every model in the hive's catalog, and the names the sources know."""
    queen: Queen = state.queen
    hive = await queen.local_hive()
    models = [e.to_json() | {"hive": hive.name} for e in hive.store.entries()]
    return {"models": models, "known": queen.catalog.known()}


@get("/models/info")
async def model_info(state: State, model: ModelParam) -> dict[str, Any]:
    queen: Queen = state.queen
    hive = await queen.local_hive()
    return hive.store.info(model) | {"hive": hive.name}


async def _provision(queen: Queen, model: str, log: EventLog) -> None:
    hive = await queen.local_hive()

    def listener(narration: Narration) -> None:
        if not log.closed:
            log.append(EventType.NARRATION, narration.to_json())

    try:
        local = await hive.store.ensure(model, listener)
        log.append(EventType.END, {"outcome": "completed", "model": hive.store.info(local.name)})
    except RbeeError as exc:
        log.append(EventType.ERROR, {"code": exc.code, "message": exc.message})
    except Exception as exc:
        log.append(EventType.ERROR, {"code": "internal_error", "message": f"{exc!r}"})


@post("/models/download", status_code=200)
async def download_model(request: Request[Any, Any, Any], state: State) -> ServerSentEvent:
    """Provision a model; the answer is an SSE stream of its progress (docs/api.md).

    The download goes on if the client leaves: another request for the same model joins it.
    """
    body = await read_json(request)
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model is required: a model name or reference", field="model")
    queen: Queen = state.queen
    hive = await queen.local_hive()
    hive.store.name_of(model)  # unknown or malformed: a 4xx now, not an error event later
    log = EventLog()
    queen.keep(asyncio.create_task(_provision(queen, model, log)))
    return sse_response(log)


@delete("/models", status_code=200)
async def remove_model(state: State, model: ModelParam) -> dict[str, Any]:
    """Forget a model and delete the files rbee downloaded for it."""
    queen: Queen = state.queen
    hive = await queen.local_hive()
    name, _ = hive.store.name_of(model)
    users = [w.id for w in hive.workers.values() if w.alive and w.model == name]
    return hive.store.remove(model, users).to_json()


MODEL_ROUTES = [list_models, model_info, download_model, remove_model]
