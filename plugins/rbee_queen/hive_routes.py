"""The queen's hive and worker API (docs/api.md): hives register and heartbeat here, and
people list, start and stop hives and workers."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, delete, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from rbee_core.addresses import is_unspecified
from rbee_core.errors import InvalidRequest, UnknownWorker
from rbee_core.messages import (
    HiveHeartbeat,
    HiveRegistration,
    HiveState,
    WorkerInfo,
    check_hive_name,
)
from rbee_core.peer_identity import HIVE_LAUNCH_TOKEN_HEADER, HIVE_TOKEN_HEADER
from rbee_http.sse import read_json
from rbee_queen import hive_client
from rbee_queen.dependencies import QueenDep
from rbee_queen.model_routes import proxy_stream, target

__all__ = ["HIVE_ROUTES"]


def _name_and_url(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object with name and url")
    name, url = body.get("name"), body.get("url")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("name is required", field="name")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidRequest("url must be the hive's http:// address", field="url")
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        raise InvalidRequest(f"url {url!r} names no host", field="url")
    if is_unspecified(host):
        raise InvalidRequest(
            f"url {url!r}: {host} means every address of the hive's machine, which nobody "
            "can dial; the hive must give an address the queen reaches (--advertise-url)",
            field="url",
        )
    return name, url.rstrip("/")


@post("/hives/register", status_code=200)
async def register(request: Request[Any, Any, Any], queen: QueenDep) -> dict[str, Any]:
    """A hive joins: ``{"name", "url", "nonce"}``, once its URL answers as that hive, holding
    ``nonce`` (rbee_core.peer_identity). Answers the heartbeat interval it must keep and
    the secret its reports must carry (``X-Rbee-Hive-Token``)."""
    body = await read_json(request)
    name, url = _name_and_url(body)
    check_hive_name(name)
    launched = queen.fleet.launched(name, request.headers.get(HIVE_LAUNCH_TOKEN_HEADER))
    queen.hives.check_free(name, url, launched)  # before dialling anything
    joining = HiveRegistration.from_json(body)
    await queen.fleet.check_not_queen(url)
    await queen.fleet.check_identity(name, url, joining.nonce)
    record = queen.hives.register(name, url, launched)
    return {"name": record.name, "heartbeat": queen.heartbeat, "secret": record.secret}


@post("/hives/heartbeat", status_code=200)
async def heartbeat(request: Request[Any, Any, Any], queen: QueenDep) -> dict[str, str]:
    """A hive is alive: ``{"name", "url", "workers", "models"}`` with its secret in the
    ``X-Rbee-Hive-Token`` header; 404 if it never registered, 403 without its secret."""
    body = await read_json(request)
    _name_and_url(body)
    beat = HiveHeartbeat.from_json(body)  # capped and checked before anything is believed
    record = queen.hives.heartbeat(beat, request.headers.get(HIVE_TOKEN_HEADER))
    if record.state == HiveState.JOINING and not record.devices and not record.learning:
        record.learning = True  # a hive that joined on its own: ask what it has, once
        queen.keep(asyncio.create_task(queen.fleet.learn_later(record)))
    queen.fleet.sync_workers(record)
    return {"status": "ok"}


@get("/hives")
async def list_hives(queen: QueenDep) -> dict[str, Any]:
    return {"hives": [r.to_json() for r in queen.hives]}


@post("/hives", status_code=201)
async def start_hive(request: Request[Any, Any, Any], queen: QueenDep) -> dict[str, Any]:
    """Start the hive of this machine (``{}``) and wait until it is ready. Hives on other
    machines are started there (``rbee-keeper hive start --ssh HOST``) and join by
    themselves."""
    body = await read_json(request)
    if isinstance(body, dict) and "ssh" in body:
        raise InvalidRequest(
            "the queen starts only this machine's hive; start one on another machine with "
            "`rbee-keeper hive start --ssh HOST`, which uses your ssh",
            field="ssh",
        )
    return (await queen.local_hive()).to_json()


@delete("/hives/{name:str}", status_code=200)
async def stop_hive(
    name: FromPath[str], queen: QueenDep, drain: FromQuery[bool] = False
) -> dict[str, Any]:
    """Stop a hive and its workers; with ``?drain=true``, first move the jobs running there
    to other hives (they go on where they were) and place none there."""
    if drain:
        await queen.drain(name)
    return (await queen.fleet.stop_hive(name)).to_json()


@post("/hives/{name:str}/drain", status_code=200)
async def hive_leaves(
    name: FromPath[str], request: Request[Any, Any, Any], queen: QueenDep
) -> dict[str, Any]:
    """A hive about to stop on its own (SIGTERM), with its secret in ``X-Rbee-Hive-Token``:
    its running jobs move to other hives; answers once none runs there, and the queen
    forgets the hive (it registers again if it comes back)."""
    queen.hives.check_secret(name, request.headers.get(HIVE_TOKEN_HEADER))
    record = await queen.drain(name)
    queen.fleet.forget_workers(name)
    queen.hives.remove(name)
    return record.to_json()


@get("/workers")
async def list_workers(queen: QueenDep) -> dict[str, Any]:
    """Every worker of every hive, as its hive last reported it."""
    return {"workers": [w.to_json() for w in queen.hives.workers()]}


@post("/workers", status_code=200)
async def spawn_worker(request: Request[Any, Any, Any], queen: QueenDep) -> Stream:
    """``{"hive"?, "model", "device"?, "backend"?, "keep_alive"?}``: an SSE stream of the
    start."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise InvalidRequest("model is required", field="model")
    queen.catalog.resolve(body["model"])
    record = await target(queen, body.get("hive"))
    forward = {k: body[k] for k in ("model", "device", "backend", "keep_alive") if k in body}

    def started(end: dict[str, Any]) -> None:
        queen.fleet.adopt(record, WorkerInfo.from_json(end["worker"]))

    return proxy_stream(queen, "POST", f"{record.url}/workers", forward, on_end=started)


@delete("/workers/{worker_id:str}", status_code=200)
async def stop_worker(worker_id: FromPath[str], queen: QueenDep) -> Any:
    for record in queen.hives:
        if any(w.id == worker_id for w in record.workers):
            queen.workers.pop(worker_id, None)
            url = f"{record.url}/workers/{worker_id}"
            return await hive_client.call(queen.http, "DELETE", url)
    raise UnknownWorker(worker_id, "any hive")


HIVE_ROUTES = [
    register,
    heartbeat,
    list_hives,
    start_hive,
    stop_hive,
    hive_leaves,
    list_workers,
    spawn_worker,
    stop_worker,
]
