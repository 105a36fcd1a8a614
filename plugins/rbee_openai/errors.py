"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``, so the
official clients raise their usual exceptions (BadRequestError, NotFoundError, ...)."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from rbee_core.errors import RbeeError, UnknownModel

__all__ = ["OpenAIError", "error_body", "failed_job", "openai_error_handlers"]

log = logging.getLogger("rbee.openai")


class OpenAIError(RbeeError):
    """A request the OpenAI API refuses; ``param`` names the offending parameter."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status


def error_body(message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def failed_job(result: dict[str, Any], headers: dict[str, str]) -> Response[Any] | None:
    """The 503 for a job an error event ended (``result`` is its end), None when it ended
    well: what a non-streamed answer is when its job failed."""
    if not result.get("code"):
        return None
    message = result.get("message", "the job failed")
    body = error_body(message, "server_error", None, result.get("code"))
    return Response(body, status_code=503, headers=headers)


def _type_for(status: int) -> str:
    return "invalid_request_error" if status < 500 else "server_error"


def _rbee_error(_: Request[Any, Any, Any], exc: RbeeError) -> Response[Any]:
    if isinstance(exc, OpenAIError):
        body = error_body(exc.message, _type_for(exc.status), exc.param, None)
    elif isinstance(exc, UnknownModel):
        body = error_body(exc.message, "invalid_request_error", "model", "model_not_found")
    else:
        param = exc.details.get("field")
        body = error_body(exc.message, _type_for(exc.status), param, exc.code)
    return Response(body, status_code=exc.status)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    body = error_body(str(exc.detail), _type_for(exc.status_code), None, None)
    return Response(body, status_code=exc.status_code)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    body = error_body(f"{type(exc).__name__}: {exc}", "server_error", None, "internal_error")
    return Response(body, status_code=500)


openai_error_handlers: ExceptionHandlersMap = {
    RbeeError: _rbee_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
