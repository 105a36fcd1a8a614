"""Steps about API keys, Host checks, body limits and graceful shutdown."""

from __future__ import annotations

import signal
import threading
from typing import Any

import httpx
from behave import given, then, when

from steps.support.jobs import DEFAULT_MODEL, post_job
from steps.support.sse import read_stream


@given('the cluster\'s API key is "{key}"')
def step_key(context: Any, key: str) -> None:
    context.env["RBEE_API_KEY"] = key  # the queen, the keeper and everything they start


@when('I GET "{path}" with the API key "{key}"')
def step_get_key(context: Any, path: str, key: str) -> None:
    context.response = httpx.get(
        f"{context.queen_url}{path}", headers={"Authorization": f"Bearer {key}"}
    )


@when('I GET "{path}" with the Host header "{host}"')
def step_get_host(context: Any, path: str, host: str) -> None:
    context.response = httpx.get(f"{context.queen_url}{path}", headers={"Host": host})


def _with_key(context: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {context.env['RBEE_API_KEY']}"}


@then("the local hive refuses a call without the key")
def step_hive_refuses(context: Any) -> None:
    hives = httpx.get(f"{context.queen_url}/hives", headers=_with_key(context)).json()["hives"]
    url = hives[0]["url"]
    assert httpx.get(f"{url}/workers").status_code == 401
    assert httpx.get(f"{url}/workers", headers=_with_key(context)).status_code == 200


@then("the worker refuses a call without the key")
def step_worker_refuses(context: Any) -> None:
    workers = httpx.get(f"{context.queen_url}/workers", headers=_with_key(context)).json()
    url = workers["workers"][0]["url"]
    body = {"model": DEFAULT_MODEL, "prompt": "hi", "max_tokens": 1}
    assert httpx.post(f"{url}/generate", json=body).status_code == 401
    assert httpx.get(f"{url}/health").status_code == 200


@when("I run queen-rbee with {options}")
def step_queen_options(context: Any, options: str) -> None:
    context.execute_steps(f"When I run queen-rbee on the same port with {options}")


@when("I POST a job whose prompt is {n:d} characters long")
def step_big_body(context: Any, n: int) -> None:
    context.response = post_job(context, prompt="a" * n)


@when("I follow the job's stream in the background")
def step_follow(context: Any) -> None:
    holder: dict[str, Any] = {}

    def read() -> None:
        holder["stream"] = read_stream(f"{context.queen_url}{context.job['sse_url']}")

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    context.followed = (thread, holder)


@when("the queen receives SIGTERM")
def step_sigterm(context: Any) -> None:
    context.queen.send_signal(signal.SIGTERM)


@then('the followed stream ends with an end event of outcome "{outcome}"')
def step_followed(context: Any, outcome: str) -> None:
    thread, holder = context.followed
    thread.join(120)
    last = holder["stream"].events[-1]
    assert last["event"] == "end" and last["data"]["outcome"] == outcome, last


@then("the queen exits within {seconds:d} seconds")
def step_queen_exits(context: Any, seconds: int) -> None:
    context.queen.wait(seconds)


@when("I start the queen again")
def step_start_again(context: Any) -> None:
    context.execute_steps("Given a queen is running")
