"""The Guard every daemon runs: what a web page can make a browser send (a simple form or a
``fetch(no-cors)`` from another origin) never reaches a handler that changes state, while
rbee's own clients (JSON, no Origin) and the same-origin console do; reads are untouched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, Request, delete, get, post
from litestar.testing import TestClient

from rbee_core import create_plugin_manager
from rbee_http.auth import Guard, authorized
from rbee_http.errors import error_handlers
from rbee_http.server import MAX_PATH, bounded
from rbee_queen.app import create_app
from rbee_queen.orchestrator import Queen

OWN = "http://127.0.0.1:8500"
EVIL = "https://evil.example"
JSON = "application/json"

calls: list[str] = []


@post("/change", status_code=200)
async def change(request: Request[Any, Any, Any]) -> dict[str, str]:
    calls.append("change")
    await request.body()
    return {"changed": "yes"}


@delete("/thing", status_code=200)
async def remove() -> dict[str, str]:
    calls.append("remove")
    return {"removed": "yes"}


@get("/read")
async def read() -> dict[str, str]:
    calls.append("read")
    return {"read": "yes"}


@get("/health")
async def health(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"status": "ok", "pid": 1} if authorized(request) else {"status": "ok"}


def _app(key: str | None = None) -> Litestar:
    return Litestar(
        route_handlers=[change, remove, read, health],
        exception_handlers=error_handlers,
        middleware=[Guard(key, loopback_only=True)],
    )


def _client(key: str | None = None) -> TestClient[Any]:
    return TestClient(_app(key), base_url=OWN)


@pytest.fixture
def client() -> Iterator[TestClient[Any]]:
    calls.clear()
    with _client() as test_client:
        yield test_client


def _refused(response: Any, status: int, code: str, *named: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    for text in named:
        assert text in error["message"], error
    assert calls == [], "a refused request reached its handler"


# What a page can send anywhere without a CORS preflight: form encodings, text/plain, or
# no body type at all (fetch no-cors with a Blob or nothing), with or without its Origin.
FORGED_TYPES = [
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
]


@pytest.mark.parametrize("content_type", FORGED_TYPES)
def test_a_simple_cross_origin_post_is_refused_naming_the_origin(
    client: TestClient[Any], content_type: str
) -> None:
    headers = {"Content-Type": content_type, "Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    response = client.post("/change", content=b'{"name": "evil"}', headers=headers)
    _refused(response, 403, "cross_origin", EVIL, OWN)


@pytest.mark.parametrize("content_type", FORGED_TYPES)
def test_a_body_not_declared_json_is_refused_even_without_an_origin(
    client: TestClient[Any], content_type: str
) -> None:
    response = client.post("/change", content=b'{"a": 1}', headers={"Content-Type": content_type})
    _refused(response, 415, "bad_content_type", JSON, content_type)


def test_a_post_without_a_content_type_is_refused_with_or_without_a_body(
    client: TestClient[Any],
) -> None:
    _refused(client.post("/change", content=b'{"a": 1}'), 415, "bad_content_type", "got none")
    _refused(client.post("/change"), 415, "bad_content_type", "POST /change", JSON)


@pytest.mark.parametrize(
    "origin",
    [
        EVIL,
        "null",  # a sandboxed frame or a local file
        "http://127.0.0.1:9999",  # another port of this host: same-site, not same-origin
        "http://localhost:8500",  # another name for the same address
        "https://127.0.0.1:8500",  # another scheme
        "http://127.0.0.1:8500.evil.example",
        "http://127.0.0.1:notaport",
        "http://127.0.0.1:8500/path",
    ],
)
def test_a_json_post_from_any_other_origin_is_refused(client: TestClient[Any], origin: str) -> None:
    response = client.post("/change", json={}, headers={"Origin": origin})
    _refused(response, 403, "cross_origin", repr(origin))


@pytest.mark.parametrize("site", ["cross-site", "same-site", "Cross-Site"])
def test_a_request_the_browser_marks_cross_site_is_refused_without_an_origin(
    client: TestClient[Any], site: str
) -> None:
    response = client.post("/change", json={}, headers={"Sec-Fetch-Site": site})
    _refused(response, 403, "cross_origin", site.lower(), "Sec-Fetch-Site")


def test_a_same_origin_json_post_is_served(client: TestClient[Any]) -> None:
    # What the console sends from its own page.
    headers = {"Origin": OWN, "Sec-Fetch-Site": "same-origin"}
    response = client.post("/change", json={"a": 1}, headers=headers)
    assert response.status_code == 200, response.text
    assert calls == ["change"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": JSON},  # rbee's own clients: no Origin, no Sec-Fetch-*
        {"Content-Type": "Application/JSON; charset=utf-8"},
        {"Content-Type": JSON, "Sec-Fetch-Site": "none"},  # typed by the user, no page
    ],
)
def test_json_without_a_foreign_origin_is_served(
    client: TestClient[Any], headers: dict[str, str]
) -> None:
    assert client.post("/change", content=b"{}", headers=headers).status_code == 200
    assert calls == ["change"]


def test_the_own_origin_is_the_host_the_request_was_addressed_to(
    client: TestClient[Any],
) -> None:
    for host, origin in [("[::1]:8500", "http://[::1]:8500"), ("localhost", "http://localhost")]:
        headers = {"Host": host, "Origin": origin}
        assert client.post("/change", json={}, headers=headers).status_code == 200
    calls.clear()
    headers = {"Host": "localhost", "Origin": "http://localhost:8080"}
    _refused(client.post("/change", json={}, headers=headers), 403, "cross_origin")


def test_a_delete_needs_no_type_without_a_body_but_no_foreign_origin(
    client: TestClient[Any],
) -> None:
    assert client.delete("/thing").status_code == 200
    assert calls == ["remove"]
    calls.clear()
    _refused(client.delete("/thing", headers={"Origin": EVIL}), 403, "cross_origin", EVIL)
    response = client.request(
        "DELETE", "/thing", content=b"x", headers={"Content-Type": "text/plain"}
    )
    _refused(response, 415, "bad_content_type", "text/plain")


def test_reads_are_untouched(client: TestClient[Any]) -> None:
    headers = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
    assert client.get("/read", headers=headers).status_code == 200
    assert calls == ["read"]


def test_a_long_origin_or_type_is_cut_short_in_the_message(client: TestClient[Any]) -> None:
    long = "https://" + "e" * 10_000 + ".example"
    response = client.post("/change", json={}, headers={"Origin": long})
    _refused(response, 403, "cross_origin")
    assert len(response.text) < 600
    response = client.post("/change", content=b"{}", headers={"Content-Type": "x/" + "y" * 9000})
    _refused(response, 415, "bad_content_type")
    assert len(response.text) < 600


def test_with_a_key_a_page_is_refused_for_its_origin_and_a_stranger_for_the_key() -> None:
    calls.clear()
    with _client("s3cret") as client:
        key = {"Authorization": "Bearer s3cret"}
        response = client.post("/change", json={}, headers={**key, "Origin": EVIL})
        _refused(response, 403, "cross_origin")
        _refused(client.post("/change", content=b"{}"), 401, "unauthorized")
        response = client.post(
            "/change", content=b"{}", headers={**key, "Content-Type": "text/plain"}
        )
        _refused(response, 415, "bad_content_type")
        assert client.post("/change", json={}, headers=key).status_code == 200


def test_the_key_may_come_as_x_api_key_as_anthropics_clients_send_it() -> None:
    calls.clear()
    with _client("s3cret") as client:
        # What the anthropic client sends: JSON, no Origin, the key in x-api-key.
        key = {"x-api-key": "s3cret", "anthropic-version": "2023-06-01"}
        for wrong in ("nope", "", "Bearer s3cret"):
            response = client.post("/change", json={}, headers={"x-api-key": wrong})
            _refused(response, 401, "unauthorized", "x-api-key")
        # The guard against other pages holds for this header as for the other.
        _refused(
            client.post("/change", json={}, headers={**key, "Origin": EVIL}), 403, "cross_origin"
        )
        response = client.post(
            "/change", content=b"{}", headers={**key, "Content-Type": "text/plain"}
        )
        _refused(response, 415, "bad_content_type")
        assert client.post("/change", json={}, headers=key).status_code == 200
        assert client.get("/read", headers=key).status_code == 200
        assert client.get("/health", headers=key).json() == {"status": "ok", "pid": 1}
    assert calls == ["change", "read"]


def test_a_public_health_tells_only_the_key_holder_more_than_alive() -> None:
    with _client("s3cret") as client:
        assert client.get("/health").json() == {"status": "ok"}
        wrong = {"Authorization": "Bearer nope"}
        assert client.get("/health", headers=wrong).json() == {"status": "ok"}
        key = {"Authorization": "Bearer s3cret"}
        assert client.get("/health", headers=key).json() == {"status": "ok", "pid": 1}
    with _client() as client:  # no key: everything is open, health included
        assert client.get("/health").json() == {"status": "ok", "pid": 1}


def test_a_keyed_queens_health_shows_its_pid_url_and_jobs_only_with_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RBEE_API_KEY", "s3cret")
    app = create_app(Queen(create_plugin_manager("queen")), stop=lambda: None)
    with TestClient(app, base_url=OWN) as client:
        assert client.get("/health").json() == {"status": "ok"}
        full = client.get("/health", headers={"Authorization": "Bearer s3cret"}).json()
        assert {"pid", "url", "jobs", "version"} <= set(full), full


def test_a_path_longer_than_any_route_is_a_404_the_router_never_sees() -> None:
    app = _app()
    with TestClient(bounded(app), base_url=OWN) as client:
        for i in range(20):
            response = client.get(f"/read/{i}" + "a" * 15_000)
            assert response.status_code == 404
            error = response.json()["error"]
            assert error["code"] == "not_found" and str(MAX_PATH) in error["message"], error
            assert len(response.text) < 300
        assert client.get("/read").status_code == 200
    # Nothing of those paths was kept: the router's per-path cache saw only "/read".
    assert app.asgi_router.handle_routing.cache_info().currsize == 1
