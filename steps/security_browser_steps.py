"""Steps that send what a web page can make a browser send (simple cross-origin requests),
flood the console's public files, and read /health with and without the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from behave import then, when

from steps.support import processes


def _key_headers(context: Any) -> dict[str, str]:
    key = context.env.get("RBEE_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _get(context: Any, url: str) -> Any:
    answer = httpx.get(url, headers=_key_headers(context), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _local_hive(context: Any) -> dict[str, Any]:
    hives = _get(context, f"{context.queen_url}/hives")["hives"]
    assert hives, "the queen has no hive"
    found: dict[str, Any] = hives[0]
    return found


def _worker(context: Any) -> dict[str, Any]:
    workers = _get(context, f"{context.queen_url}/workers")["workers"]
    assert workers, "the queen knows no worker"
    found: dict[str, Any] = workers[0]
    return found


def _base(context: Any, target: str) -> str:
    if target == "the queen":
        return str(context.queen_url)
    if target == "the local hive":
        return str(_local_hive(context)["url"])
    if target == "the worker":
        return str(_worker(context)["url"])
    raise AssertionError(f"unknown target {target!r}")


def _expand(context: Any, text: str) -> str:
    if "{queen}" in text:
        text = text.replace("{queen}", context.queen_url)
    if "{worker}" in text:
        text = text.replace("{worker}", _worker(context)["id"])
    return text


@when('a page on "{origin}" sends these text/plain requests to {target}:')
def step_forged_requests(context: Any, origin: str, target: str) -> None:
    base = _base(context, target)
    if target == "the worker":
        context.worker_before = _worker(context)
    # What a form with enctype="text/plain", or fetch(url, {mode: "no-cors"}), sends: the
    # page's Origin, and Sec-Fetch-Site from a browser that has it.
    headers = {"Content-Type": "text/plain", "Origin": origin, "Sec-Fetch-Site": "cross-site"}
    context.forged = []
    for row in context.table:
        method, path = row["request"].split(" ", 1)
        answer = httpx.request(
            method,
            base + _expand(context, path),
            content=_expand(context, row["body"]).encode(),
            headers=headers,
            timeout=60,
        )
        context.forged.append((row["request"], answer))


@then('every one was refused with {status:d} "{code}" naming "{text}"')
def step_all_refused(context: Any, status: int, code: str, text: str) -> None:
    for request, answer in context.forged:
        assert answer.status_code == status, (request, answer.status_code, answer.text[:300])
        error = answer.json()["error"]
        assert error["code"] == code and text in error["message"], (request, error)


@then('the queen lists no hive named "{name}"')
def step_no_hive_named(context: Any, name: str) -> None:
    hives = _get(context, f"{context.queen_url}/hives")["hives"]
    assert all(h["name"] != name for h in hives), hives


@then("the queen has no job")
def step_no_job(context: Any) -> None:
    jobs = _get(context, f"{context.queen_url}/jobs")["jobs"]
    assert jobs == [], jobs


@when(
    'a browser posts a hive registration for "{name}" at the queen\'s URL as {kind} with {header}'
)
def step_forged_registration(context: Any, name: str, kind: str, header: str) -> None:
    headers = {} if kind == "no content type" else {"Content-Type": kind}
    if header != "no other header":
        field, value = header.split(": ", 1)
        headers[field] = value
    # A JSON text whatever the declared type: a no-cors fetch sends any body with any of
    # the types a page may set without a preflight.
    body = json.dumps({"name": name, "url": context.queen_url, "nonce": "0123456789abcdef0"})
    context.response = httpx.post(
        f"{context.queen_url}/hives/register", content=body.encode(), headers=headers, timeout=30
    )


@then("the local hive still runs its worker, which is not retired")
def step_hive_and_worker_up(context: Any) -> None:
    before = context.worker_before
    assert _worker(context)["id"] == before["id"]
    hive_url = _local_hive(context)["url"]
    assert httpx.get(f"{hive_url}/health", timeout=10).status_code == 200
    health = httpx.get(f"{before['url']}/health", timeout=10).json()
    assert health["retired"] is False, health  # a keyless worker's full health


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


@when("I request {n:d} console files with unknown names of {kb:d} KB each")
def step_flood_console(context: Any, n: int, kb: int) -> None:
    def name(i: int) -> str:
        return f"{i:06d}" + "a" * (kb * 1000 - 6) + ".js"

    with httpx.Client(base_url=context.queen_url, timeout=30) as client:
        for i in range(20):  # warm up: what the first requests allocate once is not growth
            client.get(f"/console/warm{i}.js")
        context.rss_before = _rss_kb(context.queen.pid)
        context.flood = [client.get(f"/console/{name(i)}") for i in range(n)]


@then('every one was answered 404 "{code}" with a short message')
def step_flood_answers(context: Any, code: str) -> None:
    statuses = {answer.status_code for answer in context.flood}
    assert statuses == {404}, (statuses, context.flood[0].text[:300])
    for answer in context.flood:
        error = answer.json()["error"]
        assert error["code"] == code and len(error["message"]) < 200, error["message"][:300]


@then("the queen's resident memory grew by less than {mb:d} MB")
def step_rss_growth(context: Any, mb: int) -> None:
    grown = _rss_kb(context.queen.pid) - context.rss_before
    assert grown < mb * 1024, f"the queen's RSS grew by {grown} kB"


def _healths(context: Any, headers: dict[str, str]) -> dict[str, Any]:
    urls = {
        "queen": context.queen_url,
        "hive": _local_hive(context)["url"],
        "worker": _worker(context)["url"],
    }
    answers = {}
    for who, url in urls.items():
        answer = httpx.get(f"{url}/health", headers=headers, timeout=10)
        assert answer.status_code == 200, (who, answer.text)
        answers[who] = answer.json()
    return answers


@then(
    '/health of the queen, the local hive and the worker answers only {{"status": "ok"}} '
    "without the key"
)
def step_health_alive_only(context: Any) -> None:
    for who, body in _healths(context, {}).items():
        assert body == {"status": "ok"}, (who, body)


@then("/health of the queen, the local hive and the worker answers their details with the key")
def step_health_details(context: Any) -> None:
    answers = _healths(context, _key_headers(context))
    assert {"pid", "url", "jobs", "version"} <= set(answers["queen"]), answers["queen"]
    assert answers["queen"]["jobs"] == 1, answers["queen"]
    assert {"pid", "name"} <= set(answers["hive"]), answers["hive"]
    assert answers["worker"]["model"] == "smollm2-135m" and "pid" in answers["worker"]
    assert processes.healthy(context.queen_url)
