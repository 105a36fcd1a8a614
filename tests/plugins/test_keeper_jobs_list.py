"""``rbee-keeper jobs list`` against a fake queen that pages as the real one does: the query
it sends, ``--all`` following ``next`` to the end, and long model names kept in line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from rbee_keeper.cli import build_cli

LONG = "https://models.example.org/some-org/some-very-long-repository-name/model-q4_k_m.gguf"
JOBS = [
    {
        "job_id": f"job-{i}",
        "state": "completed" if i % 2 else "failed",
        "model": LONG if i == 3 else "smollm2-135m",
        "tokens": i,
        "created_at": 1000.0 + i,
    }
    for i in range(7, 0, -1)  # newest first
]


class PagingQueen(BaseHTTPRequestHandler):
    queries: ClassVar[list[dict[str, list[str]]]] = []
    page = 3  # the server's own default, small so that --all needs several pages

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.queries.append(query)
        jobs = [j for j in JOBS if "state" not in query or j["state"] == query["state"][0]]
        start = int(query["before"][0]) if "before" in query else 0
        limit = min(int(query.get("limit", [self.page])[0]), self.page)
        chunk = jobs[start : start + limit]
        more = start + limit < len(jobs)
        body = json.dumps({"jobs": chunk, "next": str(start + limit) if more else None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def queen() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PagingQueen)
    PagingQueen.queries = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(*args: str) -> Any:
    cli, keeper = build_cli()
    return CliRunner().invoke(cli, ["jobs", "list", *args], obj=keeper, catch_exceptions=False)


def test_one_page_says_there_is_more(queen: str) -> None:
    result = run("--limit", "2", "--state", "completed", "--queen-url", queen)
    assert result.exit_code == 0, result.output
    assert PagingQueen.queries == [{"limit": ["2"], "state": ["completed"]}]
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["JOB", "STATE", "MODEL", "TOKENS", "SUBMITTED"]
    assert [line.split()[0] for line in lines[1:]] == ["job-7", "job-5"]
    assert "older jobs not shown" in result.stderr


def test_all_follows_next_to_the_oldest(queen: str) -> None:
    result = run("--all", "--queen-url", queen)
    assert result.exit_code == 0, result.output
    assert [q.get("before") for q in PagingQueen.queries] == [None, ["3"], ["6"]]
    assert all(q["limit"] == ["1000"] for q in PagingQueen.queries)
    header, *rows = result.stdout.splitlines()
    assert [row.split()[0] for row in rows] == [j["job_id"] for j in JOBS]
    assert "older jobs not shown" not in result.stderr
    # A long model name is shortened in the middle, so the columns after it stay aligned.
    submitted = header.index("SUBMITTED")
    assert all(row[submitted - 2 : submitted] == "  " and row[submitted] != " " for row in rows)
    assert "model-q4_k_m.gguf" in rows[4] and LONG not in rows[4]


def test_json_has_every_record_whole(queen: str) -> None:
    result = run("--all", "--json", "--queen-url", queen)
    assert json.loads(result.stdout) == JOBS  # never shortened: for programs
