"""The queen's model API: each hive's catalog, and provisioning with live progress.

The hives own their catalogs; the queen asks them. ``?hive=NAME`` (or ``"hive"`` in a body)
picks a hive; without it, the local hive (started if needed). Models are named in the body
or query (``?model=``), never in the path: references contain slashes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, delete, get, post
from litestar.params import QueryParameter
from litestar.response import Stream

from rbee_core.errors import HiveError, HiveUnreachable, InvalidRequest
from rbee_core.event_log import EventLog
from rbee_core.events import EventType
from rbee_core.narration import Narration
from rbee_http.sse import background_stream, read_json
from rbee_queen import hive_client
from rbee_queen.dependencies import QueenDep
from rbee_queen.hives import HiveRecord
from rbee_queen.orchestrator import Queen

__all__ = ["MODEL_ROUTES", "catalog_entries", "proxy_stream", "target"]

ModelParam = Annotated[str, QueryParameter(name="model", description="a model reference")]
HiveParam = Annotated[str | None, QueryParameter(name="hive", description="a hive name")]


async def target(queen: QueenDep, hive: str | None) -> HiveRecord:
    """The hive a model route acts on: the named one, or the queen's local hive."""
    if hive is None:
        return await queen.local_hive()
    record = queen.hives.get(hive)
    if not record.ready:
        raise HiveUnreachable(f"hive {hive} is {record.state}")
    return record


def proxy_stream(
    queen: Queen,
    method: str,
    url: str,
    body: dict[str, Any],
    on_end: Callable[[dict[str, Any]], None] | None = None,
) -> Stream:
    """Relay a hive's SSE answer; the hive's work goes on if our client leaves.
    ``on_end`` sees the hive's end event before the client does."""

    async def relay(log: EventLog) -> None:
        async for event, data in hive_client.stream(queen.http, method, url, body):
            if event == EventType.NARRATION:  # the queen's own sinks (log, metrics) too
                queen.pm.hook.rbee_narrate(narration=Narration.from_json(data))
            elif event == EventType.END and on_end is not None:
                on_end(data)
            log.append(EventType(event), data)
            if log.closed:
                return
        raise HiveError("the hive ended the stream early")

    return background_stream(relay, queen.keep, what="the hive's stream")


@get("/models")
async def list_models(queen: QueenDep, hive: HiveParam = None) -> dict[str, Any]:
    """Every model in every ready hive's catalog (or one hive's), and the known names."""
    return {"models": await catalog_entries(queen, hive), "known": queen.catalog.known()}


async def catalog_entries(queen: Queen, hive: str | None = None) -> list[dict[str, Any]]:
    """The catalog entries of hive ``hive``, or of every ready hive (this machine's,
    started if need be, when none is ready), as each hive's ``GET /models`` lists them."""
    if hive is not None:
        records = [await target(queen, hive)]
    else:
        records = queen.hives.ready() or [await queen.local_hive()]
    answers = await asyncio.gather(
        *(hive_client.call(queen.http, "GET", f"{r.url}/models") for r in records)
    )
    return [m for answer in answers for m in answer["models"]]


@get("/models/info")
async def model_info(queen: QueenDep, model: ModelParam, hive: HiveParam = None) -> Any:
    record = await target(queen, hive)
    query = urlencode({"model": model})
    return await hive_client.call(queen.http, "GET", f"{record.url}/models/info?{query}")


@post("/models/download", status_code=200)
async def download_model(request: Request[Any, Any, Any], queen: QueenDep) -> Stream:
    """Provision a model on a hive; the answer is an SSE stream of its progress."""
    body = await read_json(request)
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model is required: a model name or reference", field="model")
    queen.catalog.resolve(model)  # unknown or malformed: a 4xx now
    record = await target(queen, body.get("hive"))
    return proxy_stream(queen, "POST", f"{record.url}/models/download", {"model": model})


@delete("/models", status_code=200)
async def remove_model(queen: QueenDep, model: ModelParam, hive: HiveParam = None) -> Any:
    """Forget a model on a hive and delete the files rbee downloaded for it."""
    record = await target(queen, hive)
    query = urlencode({"model": model})
    return await hive_client.call(queen.http, "DELETE", f"{record.url}/models?{query}")


MODEL_ROUTES = [list_models, model_info, download_model, remove_model]
