"""Errors that carry what a user needs to fix the problem: rbee's one error model.

Each error has a stable ``code`` and renders as the JSON body documented in docs/api.md:
``{"error": {"code": ..., "message": ..., ...details}}`` (``to_dict``). Servers answer it with
the error's HTTP ``status``; after a stream has started, the inner object is the data of the
stream's ``error`` event. Whatever receives one from another process (the queen from a hive
or a worker, a hive from the queen) rebuilds it with ``RbeeError.from_dict``, so a code
reaches the user as the process that raised it wrote it, never as a generic one.

Every code a process of rbee sends, with its status and meaning (a class where Python code
raises it; the others are written directly by the module named):

==================== ====== ================== ==========================================
code                 status class              meaning
==================== ====== ================== ==========================================
invalid_request      400    InvalidRequest     a malformed body or field (``field`` names it)
unauthorized         401    -                  no or a wrong API key (rbee_http.auth)
bad_host             403    -                  a Host header that is not loopback on a
                                               loopback daemon (rbee_http.auth)
cross_origin         403    -                  a state-changing request from another web
                                               page: its Origin or Sec-Fetch-Site
                                               (rbee_http.auth)
hive_identity        403    HiveIdentity       a hive report without that hive's secret, or
                                               a URL that does not prove it is the hive
worker_identity      403    WorkerIdentity     a worker heartbeat without that worker's
                                               token
unknown_model        404    UnknownModel       no model has this name (``known`` lists them)
unknown_job          404    UnknownJob         no job has this id
unknown_worker       404    UnknownWorker      no worker has this id
unknown_hive         404    UnknownHive        no hive has this name
not_found            404    -                  no such route (rbee_http.errors)
method_not_allowed   405    -                  wrong method for the route (rbee_http.errors)
http_error           4xx    -                  another HTTP error of the web framework, e.g.
                                               413 for a body over 1 MiB (rbee_http.errors)
model_in_use         409    ModelInUse         removing a model a worker has loaded
answer_diverged      409    AnswerDiverged     a job moved to another worker (its first one
                                               was lost) that would not answer the same: a
                                               different backend, quantization or device
                                               type, or different tokens (both named)
hive_conflict        409    HiveConflict       this hive name is bound to another URL
bad_content_type     415    -                  a POST or a body not declared
                                               application/json (rbee_http.auth)
queue_full           429    QueueFull          too many jobs wait for the model
                                               (``retry_after``)
rbee_error           500    RbeeError          an error of no more precise kind
internal_error       500    InternalError      a bug: the queen's log has the traceback
inference_failed     500    -                  the backend failed while generating
                                               (rbee_worker.app)
hive_unreachable     502    HiveUnreachable    a hive does not answer, stopped heartbeating,
                                               or dropped its connection
worker_lost          502    WorkerLost         the connection to a running worker dropped
                                               (after the job's moves, ``max_retries``)
hive_draining        503    HiveDraining       the hive is being drained: its jobs move to
                                               other hives (a reason for a move, never a
                                               job's end)
hive_error           502    HiveError          a hive answered something that is not
                                               rbee's: an error of another shape, a stream
                                               cut short
model_unavailable    503    ModelUnavailable   a known model this machine cannot provide
worker_retired       503    WorkerRetired      the worker is being unloaded (its hive makes
                                               room) and takes no new job: the queen places
                                               the job again (rbee_worker/retire.py)
worker_failed        503    WorkerFailed       a worker could not start: it exited, said
                                               why, or was not ready in time
no_placement         503    NoPlacement        no hive can run the job (each hive's reason)
queen_shutdown       503    QueenShutdown      the queen stopped before the job finished
queen_restarted      503    -                  the queen died with the job running
                                               (rbee_queen.job_store)
deadline_exceeded    504    DeadlineExceeded   the job did not finish within its ``timeout``
device_too_small     507    DeviceTooSmall     the model does not fit on the device
==================== ====== ================== ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "STATUS",
    "AnswerDiverged",
    "DeadlineExceeded",
    "DeviceTooSmall",
    "HiveConflict",
    "HiveError",
    "HiveDraining",
    "HiveIdentity",
    "HiveUnreachable",
    "InternalError",
    "InvalidRequest",
    "ModelInUse",
    "ModelUnavailable",
    "NoPlacement",
    "QueenShutdown",
    "QueueFull",
    "RbeeError",
    "UnknownHive",
    "UnknownJob",
    "UnknownModel",
    "UnknownWorker",
    "WorkerFailed",
    "WorkerIdentity",
    "WorkerLost",
    "WorkerRetired",
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
        """The JSON error body; its ``"error"`` object is also an ``error`` event's data."""
        return {"error": {"code": self.code, "message": self.message, **self.details}}

    @staticmethod
    def from_dict(body: Mapping[str, Any], status: int | None = None) -> RbeeError:
        """The inverse of ``to_dict``: the error another process sent, with its ``code``,
        ``message`` and details as they were. Its ``status`` is ``status`` (the HTTP answer's)
        if given, else the one its code has in the table above, else 500. A body without
        rbee's ``"error"`` object is an ``rbee_error`` that says so."""
        error = body.get("error")
        if not isinstance(error, Mapping):
            return RbeeError(f"an error answer without rbee's error object: {dict(body)!r:.200}")
        code = str(error.get("code") or RbeeError.code)
        details = {k: v for k, v in error.items() if k not in ("code", "message")}
        relayed = RbeeError(str(error.get("message") or code), **details)
        relayed.code = code
        relayed.status = status or STATUS.get(code, RbeeError.status)
        return relayed


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


class UnknownHive(RbeeError):
    """No hive has this name; the message lists the ones the queen knows."""

    code = "unknown_hive"
    status = 404

    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(known) if known else "none yet"
        super().__init__(f"no hive named {name!r}; hives: {listing}", field="hive", hive=name)


class ModelInUse(RbeeError):
    """A model cannot be removed while a worker has it loaded."""

    code = "model_in_use"
    status = 409


class HiveConflict(RbeeError):
    """This hive name is bound to another URL (rbee_queen.hives ``check_free``)."""

    code = "hive_conflict"
    status = 409


class HiveIdentity(RbeeError):
    """A report for a hive without that hive's secret, or a hive URL that does not prove it
    is the hive registering (rbee_core.peer_identity)."""

    code = "hive_identity"
    status = 403


class WorkerIdentity(RbeeError):
    """A worker heartbeat without the token its hive gave that worker."""

    code = "worker_identity"
    status = 403


class InternalError(RbeeError):
    """A bug: something raised what nothing expected."""

    code = "internal_error"
    status = 500


class HiveUnreachable(RbeeError):
    """A hive does not answer, stopped heartbeating, or its connection dropped."""

    code = "hive_unreachable"
    status = 502


class WorkerLost(RbeeError):
    """The connection to a worker running a job dropped, or its stream ended without a
    result (the worker died)."""

    code = "worker_lost"
    status = 502


class AnswerDiverged(RbeeError):
    """A job whose worker was lost mid-answer cannot go on elsewhere without changing what
    its client already has: the worker it moved to runs another backend, quantization or
    device type than the one that wrote the first tokens, or generated other tokens.
    Never a silently different answer."""

    code = "answer_diverged"
    status = 409


class HiveDraining(RbeeError):
    """The hive is being drained (``rbee-keeper hive stop --drain``, or its SIGTERM): it
    takes no new jobs, and its running ones move to other hives."""

    code = "hive_draining"
    status = 503


class WorkerRetired(RbeeError):
    """The worker is being unloaded and takes no new job; the job never started on it."""

    code = "worker_retired"
    status = 503


class HiveError(RbeeError):
    """A hive answered what is not rbee's: an error body of another shape, or a stream that
    ended without its result."""

    code = "hive_error"
    status = 502


class WorkerFailed(RbeeError):
    """A worker could not start: its process exited or said why, or it was not ready in
    time."""

    code = "worker_failed"
    status = 503


class NoPlacement(RbeeError):
    """No hive can run the job; the message gives each hive's reason."""

    code = "no_placement"
    status = 503


class QueenShutdown(RbeeError):
    """The queen stopped before the job finished."""

    code = "queen_shutdown"
    status = 503


class DeadlineExceeded(RbeeError):
    """The job did not finish within its ``timeout``."""

    code = "deadline_exceeded"
    status = 504


class DeviceTooSmall(RbeeError):
    """The model, with its runtime and KV cache, does not fit on the device."""

    code = "device_too_small"
    status = 507


STATUS: dict[str, int] = {
    "unauthorized": 401,
    "bad_host": 403,
    "cross_origin": 403,
    "bad_content_type": 415,
    "not_found": 404,
    "method_not_allowed": 405,
    "inference_failed": 500,
    "queen_restarted": 503,
    **{
        cls.code: cls.status
        for cls in (
            RbeeError,
            InvalidRequest,
            UnknownModel,
            ModelUnavailable,
            QueueFull,
            UnknownWorker,
            UnknownJob,
            UnknownHive,
            ModelInUse,
            AnswerDiverged,
            HiveDraining,
            WorkerRetired,
            HiveConflict,
            HiveIdentity,
            WorkerIdentity,
            InternalError,
            HiveUnreachable,
            WorkerLost,
            HiveError,
            WorkerFailed,
            NoPlacement,
            QueenShutdown,
            DeadlineExceeded,
            DeviceTooSmall,
        )
    },
}
"""The HTTP status of every code in the table above."""
