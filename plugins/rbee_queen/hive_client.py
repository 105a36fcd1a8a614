"""HTTP calls from the queen to a hive, with the hive's JSON errors kept intact."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import EventSource

from rbee_core.errors import RbeeError
from rbee_core.events import DONE

__all__ = ["HiveUnavailable", "call", "stream"]


class HiveUnavailable(RbeeError):
    code = "hive_unreachable"
    status = 502


class _Relayed(RbeeError):
    """An error a hive answered, passed on with its own code and status."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(
            str(error.get("message", f"the hive answered HTTP {status}")),
            **{k: v for k, v in error.items() if k not in ("message", "code")},
        )
        self.code = str(error.get("code", "hive_error"))
        self.status = status


def _raise_for(response: httpx.Response, body: bytes) -> None:
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        error = {"message": f"the hive answered HTTP {response.status_code}"}
    raise _Relayed(response.status_code, error)


async def call(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise HiveUnavailable(f"cannot reach the hive at {url}: {exc!r}") from exc
    if response.is_error:
        _raise_for(response, response.content)
    return response.json()


async def stream(
    http: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None = None
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event type, payload) of a hive's SSE answer, until ``[DONE]``."""
    try:
        async with http.stream(method, url, json=body) as response:
            if response.is_error:
                _raise_for(response, await response.aread())
            async for sse in EventSource(response).aiter_sse():
                if sse.data == DONE:
                    return
                if not sse.data:  # a keep-alive comment (a worker start can take minutes)
                    continue
                yield sse.event, json.loads(sse.data)
    except httpx.HTTPError as exc:
        raise HiveUnavailable(f"lost the connection to the hive at {url}: {exc!r}") from exc
