"""Errors that carry what a user needs to fix the problem.

Each error has a stable ``code`` and renders as the JSON body documented in docs/api.md:
``{"error": {"code": ..., "message": ..., ...details}}``. Servers map them to HTTP statuses.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "InvalidRequest",
    "QueueFull",
    "ModelUnavailable",
    "RbeeError",
    "UnknownJob",
    "UnknownModel",
    "UnknownWorker",
]


class RbeeError(Exception):
    """Base class: ``code`` names the kind of problem, ``status`` the HTTP status to use."""

    code = "rbee_error"
    status = 500
    headers: dict[str, str] | None = None  # extra HTTP headers for the answer (Retry-After)

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class InvalidRequest(RbeeError):
    """A request body or field is wrong; ``field`` names it when there is one."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str, field: str | None = None, **details: Any) -> None:
        if field is not None:
            details["field"] = field
        super().__init__(message, **details)
        self.field = field


class UnknownModel(RbeeError):
    """The model reference names no known model; ``known`` lists the ones that exist."""

    code = "unknown_model"
    status = 404

    def __init__(self, model: str, known: list[str], reason: str | None = None) -> None:
        message = reason or f"unknown model {model!r}"
        if known:
            message += f"; known models: {', '.join(known)}"
        super().__init__(message, field="model", model=model, known=known)


class ModelUnavailable(RbeeError):
    """The model is known but cannot be provisioned on this machine (missing package, ...)."""

    code = "model_unavailable"
    status = 503


class QueueFull(RbeeError):
    """Too many jobs wait for this model; come back after ``retry_after`` seconds."""

    code = "queue_full"
    status = 429

    def __init__(self, message: str, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.headers = {"Retry-After": str(retry_after)}


class UnknownWorker(RbeeError):
    """No worker has this id (on this hive, or on any hive)."""

    code = "unknown_worker"
    status = 404

    def __init__(self, worker_id: str, where: str) -> None:
        super().__init__(f"no worker {worker_id!r} on {where}", worker=worker_id)


class UnknownJob(RbeeError):
    """No job has this id."""

    code = "unknown_job"
    status = 404

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}", job_id=job_id)
