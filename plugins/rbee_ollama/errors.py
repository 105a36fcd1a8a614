"""Errors in Ollama's shape: ``{"error": "..."}`` with the status Ollama uses (400 for a bad
request, 404 for an unknown model, 500 for a failed run), so the ``ollama`` client raises its
``ResponseError`` with rbee's message and the status code."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from rbee_core.errors import STATUS, RbeeError

__all__ = ["OllamaError", "error_line", "ollama_error_handlers", "status_of"]

log = logging.getLogger("rbee.ollama")


class OllamaError(RbeeError):
    """A request Ollama's API refuses (400 unless told), with Ollama's wording where it has
    one (``"model" is required``)."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error_line(message: str) -> dict[str, str]:
    """Ollama's error object: alone as an answer, or as a line of a stream (the client
    raises ``ResponseError`` on a streamed line with ``error``)."""
    return {"error": message}


def status_of(result: dict[str, Any]) -> int:
    """The HTTP status of a job that ended with an error event: its code's (docs/api.md),
    500 (Ollama's for a failed run) when the code has none."""
    return STATUS.get(str(result.get("code")), 500)


def _rbee_error(_: Request[Any, Any, Any], exc: RbeeError) -> Response[Any]:
    return Response(error_line(exc.message), status_code=exc.status, headers=exc.headers)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return Response(error_line(str(exc.detail)), status_code=exc.status_code)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(error_line(f"{type(exc).__name__}: {exc}"), status_code=500)


ollama_error_handlers: ExceptionHandlersMap = {
    RbeeError: _rbee_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
