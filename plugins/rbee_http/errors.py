"""Every error a daemon answers has the same JSON shape (docs/api.md):
``{"error": {"code": ..., "message": ..., ...}}``, whatever raised it."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap, Send

from rbee_core.errors import RbeeError

__all__ = ["error_handlers", "send_error"]

log = logging.getLogger("rbee.http")


def _rbee_error(_: Request[Any, Any, Any], exc: RbeeError) -> Response[Any]:
    return Response(exc.to_dict(), status_code=exc.status, headers=exc.headers)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    body = {"error": {"code": code, "message": exc.detail}}
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    body = {"error": {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}}
    return Response(body, status_code=500)


error_handlers: ExceptionHandlersMap = {
    RbeeError: _rbee_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    shaped: dict[str, Any] | None = None,
) -> None:
    """Answer an error in the same shape from plain ASGI code, where no handler runs (the
    Guard, the path cap around the app); ``shaped``: the body in another API's shape, for
    routes that answer in one (rbee_http.auth.ERROR_BODY_OPT)."""
    error = shaped if shaped is not None else {"error": {"code": code, "message": message}}
    body = json.dumps(error).encode()
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    }
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
