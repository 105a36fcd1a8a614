"""The console's files, its public routes under an API key, and the event feed's ids."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import pytest
from litestar.testing import TestClient

from rbee_console import pages
from rbee_console.feed import Feed, brief
from rbee_core import create_plugin_manager
from rbee_core.events import EventType
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job
from rbee_queen.app import create_app
from rbee_queen.orchestrator import Queen


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient[Any]]:
    monkeypatch.setenv("RBEE_API_KEY", "s3cret")
    app = create_app(Queen(create_plugin_manager("queen")), stop=lambda: None)
    with TestClient(app, base_url="http://127.0.0.1:8500") as test_client:
        yield test_client


def test_the_page_and_its_files_load_without_the_key_under_a_strict_csp(
    client: TestClient[Any],
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    kinds = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
    linked = re.findall(r'(?:src|href)="(/console/[^"]+)"', page.text)
    assert any(src.endswith(".js") for src in linked), linked
    for src in linked:
        asset = client.get(src)
        assert asset.status_code == 200, src
        assert asset.headers["content-type"].startswith(kinds[src.rsplit(".", 1)[1]])


def test_data_still_needs_the_key(client: TestClient[Any]) -> None:
    assert client.get("/events").status_code == 401
    assert client.get("/jobs").status_code == 401


@pytest.mark.parametrize("name", ["nope.js", "..%2Fplugin.py", "plugin.py", "index.html.bak"])
def test_only_the_console_files_are_served(client: TestClient[Any], name: str) -> None:
    response = client.get(f"/console/{name}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_unknown_file_of_any_name_is_a_short_404_that_leaves_nothing_behind(
    client: TestClient[Any],
) -> None:
    for i in range(50):  # a name too long for the file system was a 500, each one cached
        response = client.get(f"/console/{i}{'a' * 15_000}.js")
        assert response.status_code == 404, response.text[:300]
        assert len(response.json()["error"]["message"]) < 200
    assert pages._files.cache_info().currsize == 1  # the file set, read once; no name kept


def test_no_inline_script_or_style_that_the_csp_would_have_to_allow() -> None:
    static = files("rbee_console") / "static"
    for item in static.iterdir():
        if not item.name.endswith(".html"):
            continue
        html = item.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), item.name
        assert not re.search(r"\son[a-z]+\s*=", html), item.name
        assert not re.search(r"\sstyle\s*=|<style", html), item.name


class _Queen:
    """Just what the feed reads of a queen."""

    def __init__(self) -> None:
        self.jobs = _Jobs()
        self.tasks: list[Any] = []

    def keep(self, task: Any) -> None:
        self.tasks.append(task)

    def hive_listing(self) -> list[dict[str, Any]]:
        return []

    def worker_loads(self) -> dict[str, Any]:
        return {}


class _Jobs(list[Job]):
    @property
    def live(self) -> list[Job]:
        return [job for job in self if not job.state.finished]


def test_the_feed_replays_what_a_client_missed_and_snapshots_what_it_cannot() -> None:
    async def run() -> None:
        queen: Any = _Queen()
        feed = Feed(queen, tick=0.01)
        start = feed.last_id
        feed.start()
        job = Job(JobRequest(model="m", prompt="hello"))
        queen.jobs.append(job)
        await asyncio.sleep(0.05)
        for text in ("a", "b", "c"):
            job.emit(EventType.TOKEN, {"text": text})
        await asyncio.sleep(0.05)
        events = feed.since(start)
        assert events is not None and events[0].id == start + 1
        assert [e.id for e in events] == list(range(start + 1, feed.last_id + 1))
        assert feed.since(events[2].id) == events[3:]
        assert feed.since(5) is None  # not one of this feed's ids: a snapshot
        assert feed.since(feed.last_id + 10) is None  # from a later queen
        rates = [e for e in events if e.type == "stats" and '"tokens_per_s": 0.0' not in e.data]
        assert rates, "three tokens, and no sample counted them"
        for task in queen.tasks:
            task.cancel()

    asyncio.run(run())


def test_a_brief_names_a_failed_jobs_error_and_its_timings() -> None:
    job = Job(JobRequest(model="m", prompt="x" * 500))
    job.emit(EventType.TOKEN, {"text": "a"})
    job.emit(EventType.ERROR, {"code": "worker_lost", "message": "lost worker-1"})
    shown = brief(job.summary())
    assert shown["state"] == "failed" and shown["error"] == "lost worker-1"
    assert shown["ttft"] is not None and shown["duration"] is not None
    assert len(shown["prompt"]) == 120 and "text" not in shown


def test_the_host_check_holds_for_the_console_too(client: TestClient[Any]) -> None:
    # A page on a rebinding domain must not load the console from the user's browser.
    response = client.get("/", headers={"Host": "rebind.example:8500"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_host"
