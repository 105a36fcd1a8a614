"""The keeper's commands through click's CliRunner, against a fake queen on loopback that
answers the queen's real wire format (docs/api.md)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from rbee_keeper.cli import build_cli

JOB = {
    "job_id": "job-1",
    "state": "completed",
    "model": "smollm2-135m",
    "tokens": 7,
    "created_at": 1.0,
}
EVENTS = [
    ("narration", {"actor": "queen-rbee", "action": "schedule", "message": "picked cpu"}),
    ("token", {"text": "Paris"}),
    ("token", {"text": "."}),
    ("end", {"outcome": "completed", "finish_reason": "stop", "completion_tokens": 2}),
]


class FakeQueen(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, Any]]] = []

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, None))
        if self.path == "/health":
            self._json(200, {"status": "ok", "version": "0.1.0", "url": "http://127.0.0.1:1"})
        elif self.path == "/jobs":
            self._json(200, {"jobs": [JOB]})
        elif self.path == "/jobs/job-1/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for i, (kind, data) in enumerate(EVENTS, 1):
                self.wfile.write(f"id: {i}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True
        elif self.path == "/jobs/nope":
            self._json(404, {"error": {"code": "unknown_job", "message": "no job 'nope'"}})
        else:
            self._json(404, {"error": {"code": "not_found", "message": self.path}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"null")
        self.seen.append(("POST", self.path, body))
        if self.path == "/jobs":
            self._json(201, {"job_id": "job-1", "sse_url": "/jobs/job-1/stream"})
        else:
            self._json(404, {"error": {"code": "not_found", "message": self.path}})


def serving(handler: type[FakeQueen]) -> Iterator[str]:
    """A fake queen answering with ``handler`` on a free loopback port: its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    FakeQueen.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def queen() -> Iterator[str]:
    yield from serving(FakeQueen)


def run(*args: str) -> Any:
    cli, keeper = build_cli()
    return CliRunner().invoke(cli, list(args), obj=keeper, catch_exceptions=False)


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("infer", "queen", "jobs", "model", "hive", "worker"):
        assert command in result.output


def test_infer_submits_the_job_and_prints_only_the_answer(queen: str) -> None:
    result = run("infer", "Name the capital of France.", "--temperature", "0", "--queen-url", queen)
    assert result.exit_code == 0, result.output
    assert result.stdout == "Paris.\n"
    method, path, body = next(s for s in FakeQueen.seen if s[0] == "POST")
    assert (method, path) == ("POST", "/jobs")
    assert body["prompt"] == "Name the capital of France." and body["temperature"] == 0
    assert body["model"] == "smollm2-135m" and body["max_tokens"] == 128


def test_jobs_list_prints_a_table_and_json(queen: str) -> None:
    table = run("jobs", "list", "--queen-url", queen)
    assert table.exit_code == 0
    assert "job-1" in table.output and "completed" in table.output
    as_json = run("jobs", "list", "--json", "--queen-url", queen)
    assert json.loads(as_json.output) == [JOB]


def test_an_error_the_queen_answers_is_one_clear_line(queen: str) -> None:
    result = run("jobs", "show", "nope", "--queen-url", queen)
    assert result.exit_code == 1
    assert "no job 'nope'" in result.output


def test_bad_arguments_are_usage_errors() -> None:
    assert run("infer", "hi", "--temperature", "warm").exit_code == 2
    assert (
        run("hive", "start", "--ssh-port", "22", "--queen-url", "http://127.0.0.1:1").exit_code == 2
    )
    assert run("hive", "install").exit_code == 2


def test_a_remote_hive_needs_the_key(monkeypatch: pytest.MonkeyPatch, queen: str) -> None:
    monkeypatch.delenv("RBEE_API_KEY", raising=False)
    result = run("hive", "start", "--ssh", "box", "--queen-url", queen)
    assert result.exit_code == 1
    assert "needs the cluster's API key" in result.output


def test_queen_status_says_a_keyed_queen_is_up_when_it_keeps_its_details(queen: str) -> None:
    # The fake queen's health has no pid, as a keyed queen answers a caller without the key.
    result = run("queen", "status", "--queen-url", queen)
    assert result.exit_code == 0, result.output
    assert f"queen-rbee is running at {queen} (set the API key for its details)" in result.output
