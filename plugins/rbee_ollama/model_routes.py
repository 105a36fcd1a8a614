"""Ollama's model routes over rbee's catalogs and fleet: ``/api/tags`` (the models), ``/api/ps``
(the running workers), ``/api/show``, ``/api/pull`` (rbee's download, its progress as
Ollama's lines), ``/api/delete`` (rbee's removal), ``/api/version``; what rbee does not do
(``/api/copy``, ``create``, ``push``) is refused in Ollama's error shape."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, delete, get, post
from litestar.response import Stream

from rbee_core.errors import RbeeError
from rbee_core.events import EventType
from rbee_core.narration import Narration
from rbee_http.sse import read_json
from rbee_ollama.errors import OllamaError, error_line
from rbee_ollama.names import to_ollama, to_rbee
from rbee_ollama.responses import line, timestamp
from rbee_ollama.routes import NDJSON
from rbee_queen import hive_client
from rbee_queen.dependencies import QueenDep
from rbee_queen.model_routes import catalog_entries, target
from rbee_queen.orchestrator import Queen

__all__ = ["MODEL_ROUTES", "OLLAMA_VERSION"]

# The Ollama release whose API this follows; clients check it before using newer features.
OLLAMA_VERSION = "0.14.0"
# What an rbee model can do: chat and generate, call tools (rbee_openai.tools renders them
# for any model) and embed (rbee pools any model's hidden states).
CAPABILITIES = ["completion", "tools", "embedding"]
FOREVER = 253402300799.0  # 9999-12-31: a pinned worker's expiry, as Ollama shows "forever"


def _details(fmt: str = "") -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": fmt,
        "family": "",
        "families": None,
        "parameter_size": "",
        "quantization_level": "",
    }


def _model_name(body: Any) -> str:
    """``model`` of a model route's body (older clients send ``name``)."""
    name = body.get("model") or body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise OllamaError('"model" is required')
    return name


@get("/tags")
async def tags(queen: QueenDep) -> dict[str, Any]:
    """The models: those in a hive's catalog (size, sha256 and when added), then the
    catalog's names not on any hive yet (rbee downloads them on first use: size 0)."""
    seen: dict[str, dict[str, Any]] = {}
    for entry in await catalog_entries(queen):
        name = to_ollama(entry["name"], queen.catalog)
        seen.setdefault(
            name,
            {
                "name": name,
                "model": name,
                "modified_at": timestamp(entry.get("added_at") or 0),
                "size": int(entry.get("size") or 0),
                "digest": entry.get("sha256") or "",
                "details": _details(entry.get("format") or ""),
            },
        )
    for alias in queen.catalog.known():
        name = to_ollama(alias, queen.catalog)
        seen.setdefault(
            name,
            {
                "name": name,
                "model": name,
                "modified_at": timestamp(0),
                "size": 0,
                "digest": "",
                "details": _details(),
            },
        )
    return {"models": list(seen.values())}


@get("/ps")
async def ps(queen: QueenDep) -> dict[str, Any]:
    """The models loaded: the workers the hives report, one line per model (its workers'
    memory together; it expires when the last would stop for idleness)."""
    now = time.time()
    loaded: dict[str, dict[str, Any]] = {}
    for worker in queen.hives.workers():
        name = to_ollama(worker.model, queen.catalog)
        keep = worker.keep_alive
        # Pinned (-1) or not said: kept until stopped. Else its idle time runs out then.
        expires = FOREVER if keep is None or keep < 0 else (worker.idle_since or now) + keep
        size = int(worker.memory or worker.reserved or 0)
        entry = loaded.setdefault(
            name,
            {
                "name": name,
                "model": name,
                "size": 0,
                "digest": "",
                "details": _details(),
                "expires_at": 0.0,
                "size_vram": 0,
            },
        )
        entry["size"] += size
        if worker.device != "cpu":
            entry["size_vram"] += size
        entry["expires_at"] = max(entry["expires_at"], expires)
    for entry in loaded.values():
        entry["expires_at"] = timestamp(entry["expires_at"])
    return {"models": list(loaded.values())}


@post("/show", status_code=200)
async def show(request: Request[Any, Any, Any], queen: QueenDep) -> dict[str, Any]:
    """What rbee knows of a model: where it comes from and whether a hive has it."""
    given = _model_name(await read_json(request))
    name = to_rbee(given, queen.catalog)
    queen.catalog.resolve(name)  # unknown: a 404 naming it
    record = await target(queen, None)
    query = urlencode({"model": name})
    info = await hive_client.call(queen.http, "GET", f"{record.url}/models/info?{query}")
    return {
        "modelfile": f"# rbee model {info.get('name', name)}\nFROM {info.get('ref', name)}\n",
        "parameters": "",
        "template": "",
        "details": _details(info.get("format") or ""),
        "model_info": {f"rbee.{k}": v for k, v in info.items() if v is not None},
        "capabilities": CAPABILITIES,
        "modified_at": timestamp(info.get("added_at") or 0),
    }


def _digest(ref: str) -> str:
    """The progress lines' ``digest``: the file's sha256 when the reference pins one
    (``#sha256=``), else the reference (rbee knows a download's hash only at its end)."""
    _, sep, pin = ref.partition("#sha256=")
    return f"sha256:{pin}" if sep and pin else ref


def _progress(narration: Narration, digest: str) -> dict[str, Any]:
    """A line of ``/api/pull`` from a narration of rbee's download."""
    progress = narration.progress
    if narration.action == "download_progress" and progress is not None:
        return {
            "status": f"pulling {digest.removeprefix('sha256:')[:12]}",
            "digest": digest,
            "total": int(progress.get("total") or 0),
            "completed": int(progress.get("done") or 0),
        }
    return {"status": narration.message}


async def _pull_lines(queen: Queen, name: str, url: str) -> AsyncIterator[dict[str, Any]]:
    """rbee's download of ``name`` as Ollama's pull lines; narrated to the queen's sinks too
    (its metrics count downloads). The hive goes on if the client leaves."""
    ref, _ = queen.catalog.resolve(name)
    digest = _digest(ref)
    yield {"status": "pulling manifest"}
    async for event, data in hive_client.stream(queen.http, "POST", url, {"model": name}):
        if event == EventType.NARRATION:
            narration = Narration.from_json(data)
            queen.pm.hook.rbee_narrate(narration=narration)
            yield _progress(narration, digest)
        elif event == EventType.END:
            yield {"status": "success"}
            return
        elif event == EventType.ERROR:
            raise RbeeError.from_dict({"error": data})


@post("/pull", status_code=200)
async def pull(request: Request[Any, Any, Any], queen: QueenDep) -> Response[Any] | Stream:
    """Download a model onto the local hive (``insecure`` changes nothing: rbee checks what
    it downloads by its sha256 pin or pip's record, not by the transport)."""
    body = await read_json(request)
    name = to_rbee(_model_name(body), queen.catalog)
    queen.catalog.resolve(name)  # unknown or malformed: a 4xx now, before any stream
    record = await target(queen, None)
    url = f"{record.url}/models/download"
    if body.get("stream") is False:
        async for _ in _pull_lines(queen, name, url):
            pass
        return Response({"status": "success"})

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for obj in _pull_lines(queen, name, url):
                yield line(obj)
        except RbeeError as exc:  # after the stream began: Ollama's error line
            yield line(error_line(exc.message))

    return Stream(lines(), media_type=NDJSON)


@delete("/delete", status_code=200)
async def delete_model(request: Request[Any, Any, Any], queen: QueenDep) -> Response[Any]:
    """Remove a model from the local hive's catalog and its downloaded files."""
    name = to_rbee(_model_name(await read_json(request)), queen.catalog)
    record = await target(queen, None)
    query = urlencode({"model": name})
    await hive_client.call(queen.http, "DELETE", f"{record.url}/models?{query}")
    return Response(b"", status_code=200)


@post("/copy", status_code=200)
async def copy(request: Request[Any, Any, Any]) -> None:
    raise OllamaError(
        "rbee does not copy models: a model is named by its catalog name or reference "
        "(see GET /api/tags); use that name",
        501,
    )


@post("/create", status_code=200)
async def create(request: Request[Any, Any, Any]) -> None:
    raise OllamaError(
        "rbee does not create models from Modelfiles: name a GGUF or safetensors file by its "
        "reference (file:, https:, hf:) and /api/pull it",
        501,
    )


@post("/push", status_code=200)
async def push(request: Request[Any, Any, Any]) -> None:
    raise OllamaError("rbee does not push models to a registry", 501)


@get("/version")
async def version() -> dict[str, str]:
    return {"version": OLLAMA_VERSION}


MODEL_ROUTES = [tags, ps, show, pull, delete_model, copy, create, push, version]
