"""The JSON error bodies of rbee's errors (docs/api.md)."""

from __future__ import annotations

import re

import pytest

from rbee_core.errors import (
    STATUS,
    DeadlineExceeded,
    DeviceTooSmall,
    HiveConflict,
    HiveError,
    HiveUnreachable,
    InternalError,
    InvalidRequest,
    ModelInUse,
    ModelUnavailable,
    NoPlacement,
    QueenShutdown,
    QueueFull,
    RbeeError,
    UnknownHive,
    UnknownJob,
    UnknownModel,
    UnknownWorker,
    WorkerFailed,
    WorkerLost,
)


def test_base_error_shape_and_status() -> None:
    exc = RbeeError("something broke")
    assert exc.code == "rbee_error"
    assert exc.status == 500
    assert str(exc) == "something broke"
    assert exc.message == "something broke"
    assert exc.to_dict() == {"error": {"code": "rbee_error", "message": "something broke"}}


def test_base_error_details_are_merged_into_the_body() -> None:
    exc = RbeeError("boom", worker="w-1", attempts=3)
    assert exc.details == {"worker": "w-1", "attempts": 3}
    assert exc.to_dict() == {
        "error": {"code": "rbee_error", "message": "boom", "worker": "w-1", "attempts": 3}
    }


def test_invalid_request_with_field() -> None:
    exc = InvalidRequest("max_tokens must be an integer", field="max_tokens")
    assert exc.status == 400
    assert exc.field == "max_tokens"
    assert exc.to_dict() == {
        "error": {
            "code": "invalid_request",
            "message": "max_tokens must be an integer",
            "field": "max_tokens",
        }
    }


def test_invalid_request_field_can_be_positional() -> None:
    exc = InvalidRequest("raw must be true or false", "raw")
    assert exc.field == "raw"
    assert exc.to_dict()["error"]["field"] == "raw"


def test_invalid_request_without_field_has_no_field_key() -> None:
    exc = InvalidRequest("the request body is empty")
    assert exc.field is None
    assert exc.to_dict() == {
        "error": {"code": "invalid_request", "message": "the request body is empty"}
    }


def test_invalid_request_extra_details() -> None:
    exc = InvalidRequest("out of range", field="top_k", minimum=0, maximum=10)
    assert exc.to_dict() == {
        "error": {
            "code": "invalid_request",
            "message": "out of range",
            "field": "top_k",
            "minimum": 0,
            "maximum": 10,
        }
    }


def test_unknown_model_lists_known_models() -> None:
    exc = UnknownModel("nope", ["a", "b"])
    assert exc.status == 404
    assert exc.message == "unknown model 'nope'; known models: a, b"
    assert exc.to_dict() == {
        "error": {
            "code": "unknown_model",
            "message": "unknown model 'nope'; known models: a, b",
            "field": "model",
            "model": "nope",
            "known": ["a", "b"],
        }
    }


def test_unknown_model_without_known_models() -> None:
    exc = UnknownModel("nope", [])
    assert exc.message == "unknown model 'nope'"
    assert exc.to_dict()["error"]["known"] == []


def test_unknown_model_with_reason() -> None:
    exc = UnknownModel("pypi:pkg/x.gguf", ["m"], reason="package 'pkg' has no x.gguf")
    assert exc.message == "package 'pkg' has no x.gguf; known models: m"
    body = exc.to_dict()["error"]
    assert body["model"] == "pypi:pkg/x.gguf"
    assert body["field"] == "model"


def test_model_unavailable() -> None:
    exc = ModelUnavailable("install it", model="pypi:pkg/x.gguf")
    assert exc.status == 503
    assert exc.to_dict() == {
        "error": {"code": "model_unavailable", "message": "install it", "model": "pypi:pkg/x.gguf"}
    }


def test_unknown_job() -> None:
    exc = UnknownJob("job-123")
    assert exc.status == 404
    assert exc.to_dict() == {
        "error": {"code": "unknown_job", "message": "no job with id 'job-123'", "job_id": "job-123"}
    }


@pytest.mark.parametrize(
    "exc",
    [
        InvalidRequest("x"),
        UnknownModel("m", []),
        ModelUnavailable("x"),
        UnknownJob("j"),
    ],
)
def test_every_error_is_an_rbee_error(exc: RbeeError) -> None:
    assert isinstance(exc, RbeeError)
    body = exc.to_dict()
    assert set(body) == {"error"}
    assert body["error"]["code"] == exc.code
    assert body["error"]["message"] == exc.message


def _every_error() -> list[RbeeError]:
    return [
        RbeeError("boom", worker="w-1"),
        InvalidRequest("out of range", field="top_k", minimum=0),
        UnknownModel("m", ["a"]),
        ModelUnavailable("install it", model="pypi:pkg/x.gguf"),
        QueueFull("3 jobs wait", retry_after=4, model="m"),
        UnknownWorker("w-1", "hive alpha"),
        UnknownJob("j"),
        UnknownHive("ghost", ["alpha"]),
        ModelInUse("worker-1 has it loaded", model="m"),
        HiveConflict("taken", hive="alpha"),
        InternalError("KeyError: 'x'"),
        HiveUnreachable("no heartbeat for 7.1 s", hive="alpha", worker="w-1"),
        WorkerLost("lost the connection to worker w-1"),
        HiveError("the hive answered HTTP 502"),
        WorkerFailed("the worker could not start: no memory"),
        NoPlacement("no hive can run model m"),
        QueenShutdown("the queen shut down"),
        DeadlineExceeded("the job did not finish within its 8 s deadline"),
        DeviceTooSmall("m needs 392 MB", need=392),
    ]


@pytest.mark.parametrize("exc", _every_error(), ids=lambda e: e.code)
def test_from_dict_is_the_inverse_of_to_dict(exc: RbeeError) -> None:
    relayed = RbeeError.from_dict(exc.to_dict())
    assert (relayed.code, relayed.status, relayed.message) == (exc.code, exc.status, exc.message)
    assert relayed.details == exc.details
    assert relayed.to_dict() == exc.to_dict()  # and so on, through any number of processes


def test_from_dict_takes_the_status_it_is_given() -> None:
    relayed = RbeeError.from_dict(WorkerFailed("x").to_dict(), status=502)
    assert (relayed.code, relayed.status) == ("worker_failed", 502)


def test_from_dict_keeps_a_code_it_does_not_know() -> None:
    relayed = RbeeError.from_dict({"error": {"code": "brand_new", "message": "m", "n": 1}})
    assert (relayed.code, relayed.status, relayed.message, relayed.details) == (
        "brand_new",
        500,
        "m",
        {"n": 1},
    )
    assert RbeeError.from_dict({"error": {"code": "bad_host", "message": "m"}}).status == 403


def test_from_dict_of_something_else_says_so() -> None:
    relayed = RbeeError.from_dict({"detail": "Bad Gateway"})
    assert relayed.code == "rbee_error" and "Bad Gateway" in relayed.message
    assert RbeeError.from_dict({"error": {}}).code == "rbee_error"


def test_the_table_in_the_docstring_is_every_code_and_its_status() -> None:
    import rbee_core.errors

    rows = re.findall(r"^([a-z_]+) +(\d{3}) +(\w+|-) ", rbee_core.errors.__doc__ or "", re.M)
    assert {code: int(status) for code, status, _ in rows} == STATUS
    classes = {name: getattr(rbee_core.errors, name) for name in rbee_core.errors.__all__}
    for code, _, name in rows:
        if name != "-":
            assert classes[name].code == code
    documented = {name for _, _, name in rows}
    assert {n for n, c in classes.items() if isinstance(c, type)} <= documented
