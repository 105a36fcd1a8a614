"""The JSON error bodies of rbee's errors (docs/api.md)."""

from __future__ import annotations

import pytest

from rbee_core.errors import InvalidRequest, ModelUnavailable, RbeeError, UnknownJob, UnknownModel


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
