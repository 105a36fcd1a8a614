"""The queen's HTTP API on its finite routes: health, bad job submissions, unknown jobs.

No test here submits a valid job (that would start a real worker); the behave suite does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient

from rbee_core import __version__, create_plugin_manager
from rbee_core.events import EventType
from rbee_core.job_request import JobRequest
from rbee_queen.app import create_app
from rbee_queen.orchestrator import Queen


@dataclass
class Api:
    client: TestClient[Any]
    queen: Queen
    stops: list[bool]


@pytest.fixture
def api() -> Iterator[Api]:
    queen = Queen(create_plugin_manager("queen"))
    stops: list[bool] = []
    app = create_app(queen, stop=lambda: stops.append(True))
    # A loopback queen answers loopback Host names only (DNS rebinding guard).
    with TestClient(app, base_url="http://127.0.0.1:8500") as client:
        yield Api(client, queen, stops)
    # Nothing a test did may have started a job, a hive or a worker.
    assert len(queen.jobs) == 0 or all(job.worker is None for job in queen.jobs)
    assert not queen.hives.hives
    assert not queen._tasks


JSON = {"Content-Type": "application/json"}  # what every POST must declare (rbee_http.auth)


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def post_job(api: Api, body: Any) -> Any:
    return api.client.post("/jobs", content=json.dumps(body), headers=JSON)


def test_health(api: Api) -> None:
    response = api.client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert isinstance(body["pid"], int)
    assert body["jobs"] == 0


def test_list_jobs_when_empty(api: Api) -> None:
    response = api.client.get("/jobs")
    assert response.status_code == 200
    assert response.json() == {"jobs": [], "next": None}


@pytest.mark.parametrize("body", [b"{", b"{'model': 'x'}", b"not json", b'{"a": 1,}', b"\xff\xfe"])
def test_malformed_json(api: Api, body: bytes) -> None:
    error = error_of(api.client.post("/jobs", content=body, headers=JSON), 400, "invalid_request")
    assert "not valid JSON" in error["message"]
    assert "field" not in error


@pytest.mark.parametrize("body", [b"", b"   \n"])
def test_empty_body(api: Api, body: bytes) -> None:
    error = error_of(api.client.post("/jobs", content=body, headers=JSON), 400, "invalid_request")
    assert "empty" in error["message"]
    assert "field" not in error


@pytest.mark.parametrize("body", [[], ["model", "prompt"], "text", 5, None])
def test_body_not_an_object(api: Api, body: Any) -> None:
    error = error_of(post_job(api, body), 400, "invalid_request")
    assert "JSON object" in error["message"]
    assert "field" not in error


def test_missing_prompt(api: Api) -> None:
    error = error_of(post_job(api, {"model": "smollm2-135m"}), 400, "invalid_request")
    assert error["field"] == "prompt"
    assert "required" in error["message"]


def test_missing_model(api: Api) -> None:
    error = error_of(post_job(api, {"prompt": "hi"}), 400, "invalid_request")
    assert error["field"] == "model"


def test_empty_prompt(api: Api) -> None:
    body = {"model": "smollm2-135m", "prompt": "  "}
    assert error_of(post_job(api, body), 400, "invalid_request")["field"] == "prompt"


def test_unknown_field(api: Api) -> None:
    body = {"model": "smollm2-135m", "prompt": "hi", "stream": True}
    assert error_of(post_job(api, body), 400, "invalid_request")["field"] == "stream"


@pytest.mark.parametrize("max_tokens", [0, 100_000])
def test_max_tokens_out_of_range(api: Api, max_tokens: int) -> None:
    body = {"model": "smollm2-135m", "prompt": "hi", "max_tokens": max_tokens}
    error = error_of(post_job(api, body), 400, "invalid_request")
    assert error["field"] == "max_tokens"
    assert error["minimum"] == 1
    assert error["maximum"] == 4096


def test_temperature_not_a_number(api: Api) -> None:
    body = {"model": "smollm2-135m", "prompt": "hi", "temperature": "hot"}
    error = error_of(post_job(api, body), 400, "invalid_request")
    assert error["field"] == "temperature"
    assert "'hot'" in error["message"]


def test_bad_stop(api: Api) -> None:
    body = {"model": "smollm2-135m", "prompt": "hi", "stop": [""]}
    assert error_of(post_job(api, body), 400, "invalid_request")["field"] == "stop"


def test_unknown_model_is_404_with_the_known_list(api: Api) -> None:
    error = error_of(post_job(api, {"model": "gpt-17", "prompt": "hi"}), 404, "unknown_model")
    assert error["field"] == "model"
    assert error["model"] == "gpt-17"
    assert "smollm2-135m" in error["known"]
    assert "smollm2-135m" in error["message"]


def test_unknown_scheme(api: Api) -> None:
    error = error_of(post_job(api, {"model": "nope:thing", "prompt": "hi"}), 400, "invalid_request")
    assert error["field"] == "model"
    assert "'nope:'" in error["message"]


def test_missing_model_file(api: Api, tmp_path: Any) -> None:
    body = {"model": f"file:{tmp_path / 'absent.gguf'}", "prompt": "hi"}
    error = error_of(post_job(api, body), 400, "invalid_request")
    assert error["field"] == "model"
    assert "does not exist" in error["message"]


def test_rejected_jobs_are_not_recorded(api: Api) -> None:
    post_job(api, {"model": "gpt-17", "prompt": "hi"})
    post_job(api, {"model": "smollm2-135m", "prompt": "hi", "max_tokens": 0})
    assert api.client.get("/health").json()["jobs"] == 0
    assert api.client.get("/jobs").json() == {"jobs": [], "next": None}


def test_unknown_job(api: Api) -> None:
    error = error_of(api.client.get("/jobs/job-nope"), 404, "unknown_job")
    assert error["job_id"] == "job-nope"


def test_unknown_job_stream(api: Api) -> None:
    error = error_of(api.client.get("/jobs/job-nope/stream"), 404, "unknown_job")
    assert error["job_id"] == "job-nope"


def test_unknown_route_and_wrong_method(api: Api) -> None:
    error_of(api.client.get("/no/such/route"), 404, "not_found")
    error_of(api.client.delete("/jobs"), 405, "method_not_allowed")


def test_shutdown_calls_stop(api: Api) -> None:
    response = api.client.post("/shutdown", json={})
    assert response.status_code == 202
    assert response.json() == {"status": "shutting down"}
    assert api.stops == [True]


def test_a_web_page_cannot_stop_the_queen(api: Api) -> None:
    forged = {"Content-Type": "text/plain", "Origin": "https://evil.example"}
    error_of(api.client.post("/shutdown", content=b"", headers=forged), 403, "cross_origin")
    error_of(api.client.post("/shutdown"), 415, "bad_content_type")  # no body, no type
    assert api.stops == []


# A job put straight into the registry (never submitted, so never run) whose log is already
# closed, its record written as the queen writes it when a job ends: its status and stream
# are finite.


def finished_job(api: Api) -> str:
    job = api.queen.jobs.create(JobRequest(model="smollm2-135m", prompt="hi"))
    job.emit(EventType.NARRATION, {"actor": "queen-rbee", "action": "a", "message": "m"})
    job.emit(EventType.TOKEN, {"text": "Hel"})
    job.emit(EventType.TOKEN, {"text": "lo"})
    job.emit(EventType.END, {"outcome": "completed", "finish_reason": "stop"})
    api.queen.store.save(job)
    api.queen.jobs.finished(job)
    return job.id


def sse_messages(text: str) -> list[dict[str, str]]:
    messages = []
    for block in text.replace("\r\n", "\n").strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        messages.append(fields)
    return messages


def test_status_of_a_finished_job(api: Api) -> None:
    job_id = finished_job(api)
    response = api.client.get(f"/jobs/{job_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["job_id"] == job_id
    assert body["state"] == "completed"
    assert body["text"] == "Hello"
    assert body["events"] == 4
    assert [j["job_id"] for j in api.client.get("/jobs").json()["jobs"]] == [job_id]


def test_stream_of_a_finished_job_replays_everything_then_done(api: Api) -> None:
    job_id = finished_job(api)
    response = api.client.get(f"/jobs/{job_id}/stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = sse_messages(response.text)
    assert [m.get("id") for m in messages] == ["1", "2", "3", "4", None]
    assert [m.get("event") for m in messages] == ["narration", "token", "token", "end", None]
    assert json.loads(messages[1]["data"]) == {"text": "Hel"}
    assert messages[-1]["data"] == "[DONE]"


def test_stream_resumes_after_last_event_id(api: Api) -> None:
    job_id = finished_job(api)
    response = api.client.get(f"/jobs/{job_id}/stream", headers={"Last-Event-ID": "2"})
    messages = sse_messages(response.text)
    assert [m.get("id") for m in messages] == ["3", "4", None]


def test_stream_with_a_bad_last_event_id(api: Api) -> None:
    job_id = finished_job(api)
    response = api.client.get(f"/jobs/{job_id}/stream", headers={"Last-Event-ID": "abc"})
    error = error_of(response, 400, "invalid_request")
    assert "Last-Event-ID" in error["message"]


def test_too_deeply_nested_json_is_a_bad_request(api: Api) -> None:
    response = api.client.post("/jobs", content=b"[" * 100_000, headers=JSON)
    error_of(response, 400, "invalid_request")


def test_integer_with_too_many_digits_is_a_bad_request(api: Api) -> None:
    body = b'{"model": "smollm2-135m", "prompt": "hi", "max_tokens": ' + b"9" * 5000 + b"}"
    error_of(api.client.post("/jobs", content=body, headers=JSON), 400, "invalid_request")


def test_jobs_are_listed_newest_first_a_page_at_a_time(api: Api) -> None:
    made = [finished_job(api) for _ in range(5)]
    first = api.client.get("/jobs?limit=2").json()
    assert [j["job_id"] for j in first["jobs"]] == made[::-1][:2]
    assert first["jobs"][0] == api.client.get(f"/jobs/{made[-1]}").json()
    rest = api.client.get(f"/jobs?limit=3&before={first['next']}").json()
    assert [j["job_id"] for j in rest["jobs"]] == made[::-1][2:]
    assert rest["next"] is None
    assert api.client.get("/jobs?state=failed").json() == {"jobs": [], "next": None}
    assert len(api.client.get("/jobs?state=completed&model=smollm2-135m").json()["jobs"]) == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-1", "limit"),
        ("limit=%C2%B2", "limit"),
        ("before=bm9wZQ", "before"),
        ("state=done", "state"),
        ("model=", "model"),
        ("colour=red", "colour"),
    ],
)
def test_a_bad_page_parameter_names_itself(api: Api, query: str, field: str) -> None:
    error = error_of(api.client.get(f"/jobs?{query}"), 400, "invalid_request")
    assert error["field"] == field


def test_the_page_parameters_are_in_the_openapi_schema(api: Api) -> None:
    schema = api.client.get("/schema/openapi.json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/jobs"]["get"]["parameters"]}
    assert set(parameters) == {"limit", "before", "state", "model"}
    assert all(p["in"] == "query" and not p["required"] for p in parameters.values())
    limit = parameters["limit"]["schema"]
    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, 1000)
    assert set(parameters["state"]["schema"]["enum"]) == {
        "queued",
        "running",
        "completed",
        "failed",
        "cancelled",
    }


def test_the_job_body_schema_in_openapi_is_the_job_contract(api: Api) -> None:
    from rbee_core.job_request import LIMITS, JobRequest

    operation = api.client.get("/schema/openapi.json").json()["paths"]["/jobs"]["post"]
    body = operation["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert body["required"] and schema["additionalProperties"] is False
    assert list(schema["properties"]) == list(JobRequest.__struct_fields__)
    assert schema["required"] == ["model"]
    low, high = LIMITS["max_tokens"]
    assert (schema["properties"]["max_tokens"]["minimum"], high) == (low, 4096)
    assert schema["properties"]["max_tokens"]["maximum"] == high
    assert schema == JobRequest.json_schema()  # as declared, nothing lost on the way
