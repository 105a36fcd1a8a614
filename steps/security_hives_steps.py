"""Steps of the hive-identity scenarios: a key holder (the test, with the cluster's API key but
none of the secrets the queen and hives issue) forges heartbeats and registrations against a
real queen and real hives, and a second real rbee-hive tries to take a name."""

from __future__ import annotations

import secrets
import subprocess
import time
from typing import Any

import httpx
from behave import then, when

from steps.support import processes


def _key(context: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {context.env['RBEE_API_KEY']}"}


def _hive(context: Any, name: str) -> dict[str, Any] | None:
    answer = httpx.get(f"{context.queen_url}/hives", headers=_key(context), timeout=10)
    assert answer.status_code == 200, answer.text
    return next((h for h in answer.json()["hives"] if h["name"] == name), None)


def _remember(context: Any, name: str) -> dict[str, Any]:
    """The hive's record as it was before the scenario's first forgery."""
    if not hasattr(context, "hives_before"):
        context.hives_before = {}  # the scenario's own: behave drops it at its end
    before: dict[str, dict[str, Any]] = context.hives_before
    if name not in before:
        record = _hive(context, name)
        assert record is not None, f"hive {name} is not registered"
        before[name] = record
    return before[name]


def _beat(context: Any, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    context.forged_beat = body
    context.response = httpx.post(
        f"{context.queen_url}/hives/heartbeat",
        json=body,
        headers=_key(context) | (headers or {}),
        timeout=10,
    )


@when(
    'a key holder sends a heartbeat for hive "{name}" from its own URL listing the model '
    '"{model}" and a worker at {url}'
)
def step_forged_beat(context: Any, name: str, model: str, url: str) -> None:
    record = _remember(context, name)
    worker = {"id": "worker-forged-1", "hive": name, "model": model, "device": "cpu", "url": url}
    _beat(context, {"name": name, "url": record["url"], "workers": [worker], "models": [model]})


@when('a key holder sends the same heartbeat with the made-up secret "{secret}"')
def step_forged_beat_secret(context: Any, secret: str) -> None:
    _beat(context, context.forged_beat, {"X-Rbee-Hive-Token": secret})


@when('a key holder sends a heartbeat for hive "{name}" from its own URL listing {n:d} models')
def step_many_models(context: Any, name: str, n: int) -> None:
    record = _remember(context, name)
    models = [f"model-{i}" for i in range(n)]
    _beat(context, {"name": name, "url": record["url"], "workers": [], "models": models})


@when(
    'a key holder sends a heartbeat for hive "{name}" from its own URL listing a model name '
    "of {n:d} characters"
)
def step_long_model(context: Any, name: str, n: int) -> None:
    record = _remember(context, name)
    _beat(context, {"name": name, "url": record["url"], "workers": [], "models": ["m" * n]})


def _register(context: Any, name: str, url: str) -> None:
    """A registration as an attacker makes it: a nonce of its own, which the hive at ``url``
    cannot prove it holds."""
    body = {"name": name, "url": url, "nonce": secrets.token_urlsafe(32)}
    context.response = httpx.post(
        f"{context.queen_url}/hives/register", json=body, headers=_key(context), timeout=30
    )


@when('a key holder registers a hive named "{name}" from hive "{other}"\'s URL')
def step_register_at_hive(context: Any, name: str, other: str) -> None:
    _register(context, name, _remember(context, other)["url"])


@when('a key holder registers a hive named "{name}" from the queen\'s own URL as {host}')
def step_register_queen(context: Any, name: str, host: str) -> None:
    _register(context, name, f"http://{host}:{context.port}")


@then('hive "{name}" keeps its URL, models and workers, and is ready')
def step_hive_unchanged(context: Any, name: str) -> None:
    before = _remember(context, name)
    # Two heartbeats later: its own heartbeats are still taken, and nothing forged stuck.
    time.sleep(1.2)
    now = _hive(context, name)
    assert now is not None, f"hive {name} is gone"
    assert (now["url"], now["models"], now["workers"]) == (
        before["url"],
        before["models"],
        before["workers"],
    ), (before, now)
    assert now["state"] == "ready", now
    assert now["last_heartbeat"] > before["last_heartbeat"], (before, now)


@then("the queen lists no worker at {url}")
def step_no_worker_at(context: Any, url: str) -> None:
    answer = httpx.get(f"{context.queen_url}/workers", headers=_key(context), timeout=10)
    assert all(w["url"] != url for w in answer.json()["workers"]), answer.text


@then('the queen lists no hive "{name}"')
def step_no_hive(context: Any, name: str) -> None:
    assert _hive(context, name) is None, _hive(context, name)


@when('another rbee-hive named "{name}" tries to join the queen from its own port')
def step_impostor_hive(context: Any, name: str) -> None:
    _remember(context, name)
    home = context.home / "hives" / f"{name}-impostor-{time.monotonic_ns()}"
    (home / "models").mkdir(parents=True)
    env = context.env | {"RBEE_HOME": str(home), "RBEE_MODELS_DIR": str(home / "models")}
    argv = ["--detach", "--queen-url", context.queen_url, "--port", "0", "--name", name]
    context.result = subprocess.run(
        [*processes.command("rbee-hive"), *argv, "--heartbeat", "0.5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@then('hive "{name}" is still registered from its first URL')
def step_same_url(context: Any, name: str) -> None:
    now = _hive(context, name)
    assert now is not None and now["url"] == _remember(context, name)["url"], now


def _worker_of(context: Any, name: str) -> tuple[str, dict[str, Any]]:
    """The hive's URL and the one worker it reports itself (``GET /workers`` of the hive)."""
    url = _remember(context, name)["url"]
    answer = httpx.get(f"{url}/workers", headers=_key(context), timeout=10)
    assert answer.status_code == 200, answer.text
    (worker,) = answer.json()["workers"]
    return url, worker


@when('a key holder sends hive "{name}" a heartbeat for its worker saying it served {n:d} jobs')
def step_forged_worker_beat(context: Any, name: str, n: int) -> None:
    url, worker = _worker_of(context, name)
    context.worker_before = worker
    beat = {"busy": False, "running": 0, "waiting": 0, "jobs_served": n, "idle_since": 0.0}
    context.response = httpx.post(
        f"{url}/workers/{worker['id']}/heartbeat", json=beat, headers=_key(context), timeout=10
    )


@then('hive "{name}" reports its worker served {n:d} jobs')
def step_worker_served(context: Any, name: str, n: int) -> None:
    _, worker = _worker_of(context, name)
    assert worker["jobs_served"] == n, worker


@then('hive "{name}" still runs its worker after {seconds:d} seconds of its own heartbeats')
def step_worker_stays(context: Any, name: str, seconds: int) -> None:
    # A hive stops a worker silent for 3 heartbeats + 5 s: one whose own (token-carrying)
    # heartbeats were refused would be gone by now.
    time.sleep(seconds)
    _, worker = _worker_of(context, name)
    assert worker["id"] == context.worker_before["id"], (context.worker_before, worker)
    assert httpx.get(f"{worker['url']}/health", timeout=5).status_code == 200
