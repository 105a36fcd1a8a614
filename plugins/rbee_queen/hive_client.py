"""HTTP calls from the queen to a hive, with the hive's JSON errors kept intact."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import EventSource

from rbee_core.errors import HiveError, HiveUnreachable, RbeeError
from rbee_core.events import DONE

__all__ = ["call", "error_answer", "stream"]


def error_answer(
    response: httpx.Response,
    body: bytes,
    peer: str = "hive",
    fallback: type[RbeeError] = HiveError,
) -> RbeeError:
    """The error a hive (or a worker: ``peer``) answered, with its own code, status and
    details (``RbeeError.from_dict``); an answer not in rbee's shape is a ``fallback``."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not (isinstance(answer, dict) and isinstance(answer.get("error"), dict)):
        text = body[:200].decode(errors="replace").strip()
        why = f"the {peer} answered HTTP {response.status_code}" + (f": {text}" if text else "")
        answer = fallback(why).to_dict()
    return RbeeError.from_dict(answer, response.status_code)


async def call(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise HiveUnreachable(f"cannot reach the hive at {url}: {exc!r}") from exc
    if response.is_error:
        raise error_answer(response, response.content)
    return response.json()


async def stream(
    http: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None = None
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event type, payload) of a hive's SSE answer, until ``[DONE]``. An ``error`` event is
    yielded like the others: ``RbeeError.from_dict({"error": payload})`` rebuilds it."""
    try:
        async with http.stream(method, url, json=body) as response:
            if response.is_error:
                raise error_answer(response, await response.aread())
            async for sse in EventSource(response).aiter_sse():
                if sse.data == DONE:
                    return
                if not sse.data:  # a keep-alive comment (a worker start can take minutes)
                    continue
                yield sse.event, json.loads(sse.data)
    except httpx.HTTPError as exc:
        raise HiveUnreachable(f"lost the connection to the hive at {url}: {exc!r}") from exc
