"""Errors in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}`` with
Anthropic's status codes, so the official clients raise their usual exceptions
(BadRequestError, NotFoundError, RateLimitError, ServiceUnavailableError, ...)."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from rbee_core.errors import STATUS, RbeeError

__all__ = [
    "AnthropicError",
    "anthropic_error_handlers",
    "error_body",
    "error_type",
    "job_error",
]

log = logging.getLogger("rbee.anthropic")

# Anthropic's error types by HTTP status (their "Errors" page); any other 4xx is a request
# error, any other 5xx an API error.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    # rbee's 503s (no hive can place the job, a worker failed to start, the queen stops)
    # pass with time, as Anthropic's overloaded_error does; the status stays 503.
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class AnthropicError(RbeeError):
    """A request the Messages API refuses (400 unless told); the message names the field."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error_type(status: int) -> str:
    if status in _TYPES:
        return _TYPES[status]
    return "invalid_request_error" if status < 500 else "api_error"


def error_body(message: str, status: int) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def job_error(result: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The body and status of a job that ended in an error event (its ``result``)."""
    status = STATUS.get(str(result.get("code")), 500)
    return error_body(str(result.get("message", "the job failed")), status), status


def _rbee_error(_: Request[Any, Any, Any], exc: RbeeError) -> Response[Any]:
    return Response(
        error_body(exc.message, exc.status), status_code=exc.status, headers=exc.headers
    )


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    body = error_body(str(exc.detail), exc.status_code)
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(error_body(f"{type(exc).__name__}: {exc}", 500), status_code=500)


anthropic_error_handlers: ExceptionHandlersMap = {
    RbeeError: _rbee_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
