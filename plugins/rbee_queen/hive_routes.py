"""The queen's hive and worker API (docs/api.md): hives register and heartbeat here, and
people list, start and stop hives and workers."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Stream

from rbee_core.errors import InvalidRequest, UnknownWorker
from rbee_http.sse import read_json
from rbee_queen import hive_client
from rbee_queen.launcher import ssh_command
from rbee_queen.model_routes import proxy_stream, target
from rbee_queen.orchestrator import Queen

__all__ = ["HIVE_ROUTES"]


def _name_and_url(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object with name and url")
    name, url = body.get("name"), body.get("url")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("name is required", field="name")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidRequest("url must be the hive's http:// address", field="url")
    return name, url.rstrip("/")


@post("/hives/register", status_code=200)
async def register(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """A hive joins: ``{"name", "url"}``. Answers the heartbeat interval it must keep."""
    queen: Queen = state.queen
    record = queen.hives.register(*_name_and_url(await read_json(request)))
    return {"name": record.name, "heartbeat": queen.heartbeat}


@post("/hives/heartbeat", status_code=200)
async def heartbeat(request: Request[Any, Any, Any], state: State) -> dict[str, str]:
    """A hive is alive: ``{"name", "url", "workers", "models"}``; 404 if it never registered."""
    queen: Queen = state.queen
    body = await read_json(request)
    name, _ = _name_and_url(body)
    record = queen.hives.heartbeat(name, body)
    if record.state == "joining" and record.first_heartbeat.is_set() and not record.devices:
        queen.keep(asyncio.create_task(queen.learn(record)))  # a hive that joined on its own
    queen.sync_workers(record)
    return {"status": "ok"}


@get("/hives")
async def list_hives(state: State) -> dict[str, Any]:
    queen: Queen = state.queen
    return {"hives": [r.to_json() for r in queen.hives.hives.values()]}


@post("/hives", status_code=201)
async def start_hive(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Start a hive: on this machine (``{}``), or on another through ssh (``{"ssh": HOST}``),
    and wait for its first heartbeat."""
    queen: Queen = state.queen
    body = await read_json(request)
    host = body.get("ssh") if isinstance(body, dict) else None
    if host is None:
        return (await queen.local_hive()).to_json()
    if not isinstance(host, str) or not host or host.startswith("-"):
        raise InvalidRequest("ssh must be a host name", field="ssh")
    command = ssh_command(host, queen.url)
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise hive_client.HiveUnavailable(
            f"ssh {host} failed (code {process.returncode}): {output.decode(errors='replace')}"
        )
    for _ in range(600):
        record = queen.hives.hives.get(host)
        if record is not None and record.ready:
            return record.to_json()
        await asyncio.sleep(0.1)
    raise hive_client.HiveUnavailable(f"the hive on {host} did not join within 60 s")


@delete("/hives/{name:str}", status_code=200)
async def stop_hive(name: FromPath[str], state: State) -> dict[str, Any]:
    """Stop a hive and its workers."""
    queen: Queen = state.queen
    return (await queen.stop_hive(name)).to_json()


@get("/workers")
async def list_workers(state: State) -> dict[str, Any]:
    """Every worker of every hive, as its hive last reported it."""
    queen: Queen = state.queen
    return {"workers": [w for r in queen.hives.hives.values() for w in r.workers]}


@post("/workers", status_code=200)
async def spawn_worker(request: Request[Any, Any, Any], state: State) -> Stream:
    """``{"hive"?, "model", "device"?, "backend"?, "keep_alive"?}``: an SSE stream of the
    start."""
    queen: Queen = state.queen
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise InvalidRequest("model is required", field="model")
    queen.catalog.resolve(body["model"])
    record = await target(queen, body.get("hive"))
    forward = {k: body[k] for k in ("model", "device", "backend", "keep_alive") if k in body}
    return proxy_stream(queen, "POST", f"{record.url}/workers", forward)


@delete("/workers/{worker_id:str}", status_code=200)
async def stop_worker(worker_id: FromPath[str], state: State) -> Any:
    queen: Queen = state.queen
    for record in queen.hives.hives.values():
        if any(w["id"] == worker_id for w in record.workers):
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
    list_workers,
    spawn_worker,
    stop_worker,
]
