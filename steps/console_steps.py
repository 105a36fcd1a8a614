"""Steps that use the web console in a real headless Chromium, and the event feed behind it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from behave import given, then, when

from steps.support.browser import Browser
from steps.support.jobs import auth
from steps.support.model_server import ModelServer
from steps.support.placeholders import default_gguf, expand
from steps.support.sse import Stream, read_stream

WAIT = 120  # seconds: a first job starts a hive and a worker on a busy 2-core machine


def _browser(context: Any) -> Browser:
    if getattr(context, "browser", None) is None:
        context.browser = Browser(context.queen_url, context.home, context.scenario.name)
        context.cleanups.append(context.browser.close)
    browser: Browser = context.browser
    return browser


def _page(context: Any, fragment: str) -> Browser:
    browser = _browser(context)
    if browser.driver.current_url.startswith(context.queen_url):
        browser.go(fragment)
    else:
        browser.open(fragment)
    return browser


# -- opening pages ---------------------------------------------------------------------


@when("I open the console")
def step_open(context: Any) -> None:
    _browser(context).open()


@when("I open the console's {page} page")
@when("I go to the console's {page} page")
def step_go(context: Any, page: str) -> None:
    _page(context, f"#/{page}")


@when("I open the console's playground")
def step_playground(context: Any) -> None:
    _page(context, "#/playground")


@when("I open the console at the job's view")
def step_open_job(context: Any) -> None:
    _page(context, f"#/jobs/{context.job['job_id']}")


# -- cluster ---------------------------------------------------------------------------


def _hive_css(context: Any) -> str:
    return f'.hive[data-hive="{context.hive_name}"]'


@then('the cluster page shows the hive "{name}" as "{state}"')
def step_hive(context: Any, name: str, state: str) -> None:
    browser = _page(context, "#/cluster")
    context.hive_name = name
    css = f'.hive[data-hive="{name}"] .hive-state'
    browser.until(lambda: browser.text(css) == state, WAIT, f"hive {name} shown as {state}")
    browser.snap("cluster")


@then('the hive\'s device "{device}" has a memory bar')
def step_device(context: Any, device: str) -> None:
    browser = context.browser
    bar = browser.one(f'{_hive_css(context)} .device[data-device="{device}"] .bar')
    width = bar.value_of_css_property("width")
    assert float(width.removesuffix("px")) > 0, f"the memory bar of {device} is {width} wide"


@then('the hive has a worker of "{model}" with its resident memory')
def step_worker(context: Any, model: str) -> None:
    browser = context.browser
    workers = f"{_hive_css(context)} .worker"

    def shown() -> str | None:
        for worker in browser.all(workers):
            if worker.find_element("css selector", ".worker-model").text == model:
                return str(worker.text)
        return None

    text = browser.until(shown, 30, f"a worker of {model}")
    assert " MB" in text or " GB" in text or " GiB" in text or " MiB" in text, (
        f"the worker shows no memory: {text!r}"
    )
    browser.snap("cluster-worker")


@then('the cluster page shows, on hive "{name}", "{text}"')
def step_hive_shows(context: Any, name: str, text: str) -> None:
    browser = _page(context, "#/cluster")
    css = f'.hive[data-hive="{name}"]'
    browser.until(lambda: text in browser.text(css), 30, f"hive {name} showing {text!r}")
    browser.snap(f"cluster-{name}")


# -- jobs ------------------------------------------------------------------------------


def _last_job_id(context: Any) -> str:
    job = getattr(context, "job", None)
    if job:
        return str(job["job_id"])
    page = httpx.get(f"{context.queen_url}/jobs?limit=1", headers=auth(context), timeout=10)
    context.job = page.json()["jobs"][0]
    return str(context.job["job_id"])


@then('the jobs page lists the job as "{state}" for "{model}"')
def step_jobs_row(context: Any, state: str, model: str) -> None:
    browser = context.browser
    row = f'tr.job[data-job="{_last_job_id(context)}"]'
    browser.until(
        lambda: (
            browser.text(f"{row} .job-state") == state
            and browser.text(f"{row} .job-model") == model
        ),
        30,
        f"the job listed as {state} for {model}",
    )
    browser.snap("jobs")


@when("I open the job from the jobs page")
def step_click_job(context: Any) -> None:
    browser = context.browser
    browser.one(f'tr.job[data-job="{_last_job_id(context)}"]').click()
    browser.until(lambda: browser.text("#job-id") == context.job["job_id"], 10, "the job view")


@then('the job view shows the state "{state}"')
def step_job_state(context: Any, state: str) -> None:
    browser = context.browser
    browser.until(lambda: browser.text("#job-state") == state, 60, f"the job view to say {state}")
    browser.snap(f"job-{state}")


@then('the job view\'s output is "{text}"')
def step_job_output(context: Any, text: str) -> None:
    browser = context.browser
    browser.until(lambda: browser.text("#job-output") == text, 10, f"the output {text!r}")


@then('the job view\'s narration includes "{text}"')
def step_job_narration(context: Any, text: str) -> None:
    browser = context.browser
    browser.until(lambda: text in browser.text("#job-narration"), 10, f"narration {text!r}")


@then("the job view's output grows as tokens arrive")
def step_job_grows(context: Any) -> None:
    browser = context.browser
    seen = []
    deadline = time.monotonic() + 30
    while len(set(seen)) < 3 and time.monotonic() < deadline:
        seen.append(len(browser.text("#job-output")))
        time.sleep(0.3)
    lengths = sorted(set(seen))
    assert len(lengths) >= 3 and lengths[0] > 0, f"the output did not grow: lengths {seen}"
    browser.snap("job-streaming")


@when("I press the job view's cancel button")
def step_cancel(context: Any) -> None:
    context.browser.one("#job-cancel").click()


# -- charts ----------------------------------------------------------------------------


@then("the tokens chart shows output tokens/s above 0 in its history")
def step_chart(context: Any) -> None:
    browser = context.browser

    def peak() -> float:
        raw = browser.one("#chart-tps").get_attribute("data-max") or "0"
        return float(raw)

    browser.until(lambda: peak() > 0, 10, "a token rate above 0 in the chart")
    browser.snap("charts")


# -- playground ------------------------------------------------------------------------


@when("I set the playground's temperature to {value}")
def step_temperature(context: Any, value: str) -> None:
    field = context.browser.one("#pg-temperature")
    field.clear()
    field.send_keys(value)


@when('I send "{text}" in the playground')
def step_send(context: Any, text: str) -> None:
    browser = context.browser
    browser.until(
        lambda: browser.one("#pg-send").is_enabled() and browser.all("#pg-model option"),
        WAIT,
        "the send button and a model to choose",
    )
    context.answers_before = len(browser.all("#pg-messages .msg.assistant"))
    browser.one("#pg-input").send_keys(text)
    browser.one("#pg-send").click()


def _answers(context: Any) -> list[str]:
    return [m.text for m in context.browser.all("#pg-messages .msg.assistant")]


@then('the playground\'s answer contains "{text}"')
def step_answer(context: Any, text: str) -> None:
    browser = context.browser
    browser.until(
        lambda: browser.one("#pg-send").is_enabled() and text in (_answers(context) or [""])[-1],
        WAIT,
        f"an answer containing {text!r}",
    )
    browser.snap("playground")


@then('the playground\'s narration includes "{text}"')
def step_pg_narration(context: Any, text: str) -> None:
    browser = context.browser
    browser.until(lambda: text in browser.text("#pg-narration"), 10, f"narration {text!r}")


@then("the playground shows {n:d} answers")
def step_answers(context: Any, n: int) -> None:
    browser = context.browser
    browser.until(
        lambda: (
            browser.one("#pg-send").is_enabled()
            and len(_answers(context)) == n
            and all(_answers(context))
        ),
        WAIT,
        f"{n} answers",
    )
    browser.snap("playground-turns")


@then("the last job's request carried the whole conversation of {n:d} messages")
def step_conversation(context: Any, n: int) -> None:
    page = httpx.get(f"{context.queen_url}/jobs?limit=1", headers=auth(context), timeout=10)
    messages = page.json()["jobs"][0]["request"]["messages"]
    roles = [m["role"] for m in messages]
    assert len(messages) == n and roles[-1] == "user" and "assistant" in roles, messages


# -- models ----------------------------------------------------------------------------


@given("a host on loopback serves the default model's GGUF file at {rate:d} MB/s")
def step_slow_model_server(context: Any, rate: int) -> None:
    context.model_server = ModelServer(default_gguf(), rate=rate * 1e6)
    context.add_cleanup(context.model_server.close)
    context.model_url = context.model_server.url


@when('I download "{reference}" from the models page')
def step_download(context: Any, reference: str) -> None:
    browser = context.browser
    browser.one("#model-ref").send_keys(expand(context, reference))
    browser.one("#model-download").click()
    values: list[float] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = float(browser.one("#download-progress").get_attribute("value") or 0)
        if not values or values[-1] != value:
            values.append(value)
            if 30 < value < 100 and not getattr(context, "shot_progress", False):
                browser.snap("models-downloading")
                context.shot_progress = True
        failed = "error" in (browser.one("#download-status").get_attribute("class") or "")
        if value >= 100 or failed:
            break
        time.sleep(0.05)
    context.progress_values = values


@then("the download bar moves through at least {n:d} values below 100 and ends at {end:d}")
def step_progress(context: Any, n: int, end: int) -> None:
    values = context.progress_values
    between = [v for v in values if 0 < v < 100]
    assert len(between) >= n and values[-1] == end, f"the bar showed {values}"
    assert values == sorted(values), f"the bar went backwards: {values}"


@then('the download status says "{text}"')
def step_download_status(context: Any, text: str) -> None:
    browser = context.browser
    browser.until(lambda: text in browser.text("#download-status"), 10, f"status {text!r}")
    browser.snap("models-downloaded")


def _model_row(name: str) -> str:
    return f'tr.model[data-model="{name}"]'


@then('the models page lists "{name}"')
def step_model_listed(context: Any, name: str) -> None:
    browser = context.browser
    browser.until(lambda: browser.all(_model_row(name)), 30, f"the model {name} listed")
    browser.snap("models")


@when('I remove "{name}" from the models page')
def step_remove(context: Any, name: str) -> None:
    context.browser.one(f"{_model_row(name)} .model-remove").click()


@then('the models page does not list "{name}"')
def step_model_gone(context: Any, name: str) -> None:
    browser = context.browser
    browser.until(lambda: not browser.all(_model_row(name)), 30, f"the model {name} gone")
    catalog = httpx.get(f"{context.queen_url}/models", headers=auth(context), timeout=30).json()
    assert not [m for m in catalog["models"] if name in m["name"]], catalog
    browser.snap("models-removed")


# -- the API key -----------------------------------------------------------------------


@then("the console asks for the API key")
def step_asks(context: Any) -> None:
    browser = context.browser
    browser.until(lambda: browser.one("#login").is_displayed(), 30, "the login form")
    assert browser.text("#conn-state") == "locked", browser.text("#conn-state")
    browser.snap("login")


@then("the console shows no hive and no job")
def step_shows_nothing(context: Any) -> None:
    browser = context.browser
    for page in ("cluster", "jobs"):
        browser.go(f"#/{page}")
        time.sleep(0.3)
        assert not browser.all(".hive") and not browser.all("tr.job"), f"the {page} page shows data"
    assert browser.one("#login").is_displayed(), "the login form went away"


@when('I enter the API key "{key}"')
def step_enter_key(context: Any, key: str) -> None:
    browser = context.browser
    field = browser.one("#api-key")
    field.clear()
    field.send_keys(key)
    browser.one("#login-submit").click()


@then("the console says the key was refused")
def step_refused(context: Any) -> None:
    browser = context.browser
    browser.until(lambda: browser.text("#login-error"), 10, "a login error")
    browser.snap("login-refused")


@then('no URL the browser requested contains "{secret}"')
def step_no_key_in_urls(context: Any, secret: str) -> None:
    urls = context.browser.requested_urls()
    assert urls, "the network log is empty"
    assert not [u for u in urls if secret in u], [u for u in urls if secret in u]


@then("the browser reported no errors")
def step_no_errors(context: Any) -> None:
    errors = context.browser.errors()
    assert not errors, "the page's console reported:\n" + "\n".join(errors)


# -- the event feed, as another tool reads it ----------------------------------------------


def _read_feed(
    context: Any, done: Callable[[list[dict[str, Any]]], bool], after: int | None = None
) -> list[dict[str, Any]]:
    """Events of ``GET /events`` until ``done`` says enough (at most 30 s)."""
    headers = auth(context) | ({"Last-Event-ID": str(after)} if after else {})
    deadline = time.monotonic() + 30

    def enough(stream: Stream) -> bool:
        assert time.monotonic() < deadline, f"the feed never got there: {stream.events}"
        return done(stream.events)

    return read_stream(f"{context.queen_url}/events", headers, 30, until=enough).events


@when("I read the event feed until its first {n:d} events")
def step_feed(context: Any, n: int) -> None:
    context.feed = _read_feed(context, lambda events: len(events) >= n)
    context.first_feed = context.feed


@then("the first event is a snapshot of the hives, the jobs and the charts' history")
def step_snapshot(context: Any) -> None:
    first = context.feed[0]
    assert first["event"] == "snapshot", first
    assert {"hives", "jobs", "stats"} <= set(first["data"]), first["data"].keys()


@when("I read the event feed again with Last-Event-ID of its second event")
def step_feed_again(context: Any) -> None:
    job_id = context.job["job_id"]

    def finished(events: list[dict[str, Any]]) -> bool:
        jobs = (j for e in events if e["event"] == "jobs" for j in e["data"]["jobs"])
        return any(j["job_id"] == job_id and j["finished_at"] for j in jobs)

    context.feed = _read_feed(context, finished, after=context.first_feed[1]["id"])


@then("it starts with the third event, without a snapshot")
def step_feed_resumed(context: Any) -> None:
    first, third = context.feed[0], context.first_feed[2]
    assert (first["id"], first["event"]) == (third["id"], third["event"]), (first, third)
    assert all(e["event"] != "snapshot" for e in context.feed)
    ids = [e["id"] for e in context.feed]
    assert ids == list(range(ids[0], ids[0] + len(ids))), f"ids with gaps: {ids}"


@then('it reports the job as "{state}"')
def step_feed_job(context: Any, state: str) -> None:
    job_id = context.job["job_id"]
    briefs = [j for e in context.feed if e["event"] == "jobs" for j in e["data"]["jobs"]]
    mine = [j for j in briefs if j["job_id"] == job_id]
    assert mine and mine[-1]["state"] == state, mine or briefs
    assert mine[-1]["tokens"] > 0 and mine[-1]["ttft"] is not None, mine[-1]


@when("I read the event feed with Last-Event-ID {after:d}")
def step_feed_stale(context: Any, after: int) -> None:
    context.feed = _read_feed(context, lambda events: len(events) >= 1, after=after)
