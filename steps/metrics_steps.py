"""Steps that scrape the queen's Prometheus metrics."""

from __future__ import annotations

from typing import Any

import httpx
from behave import then, when
from prometheus_client.parser import text_string_to_metric_families


def _scrape(context: Any) -> dict[str, float]:
    response = httpx.get(f"{context.queen_url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    context.metrics_response = response
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


@when("I scrape the queen's metrics")
def step_scrape(context: Any) -> None:
    context.metrics_before = _scrape(context)


@when("I scrape the queen's metrics again")
def step_scrape_again(context: Any) -> None:
    context.metrics_after = _scrape(context)


@then("the metrics are served as Prometheus text")
def step_content_type(context: Any) -> None:
    assert context.metrics_response.headers["content-type"].startswith("text/plain")


def _delta(context: Any, name: str) -> float:
    after = context.metrics_after.get(name)
    assert after is not None, f"{name} not among {sorted(context.metrics_after)}"
    return after - context.metrics_before.get(name, 0.0)


@then("the metric {name} grew by {n:d}")
def step_grew(context: Any, name: str, n: int) -> None:
    assert _delta(context, name) == n, (name, _delta(context, name))


@then("the metric {name} grew by the job's completion tokens")
def step_grew_tokens(context: Any, name: str) -> None:
    end = context.stream.of_type("end")[-1]["data"]
    assert _delta(context, name) == end["completion_tokens"], (name, end)


@then("the metric {name} is {value:d}")
def step_is(context: Any, name: str, value: int) -> None:
    assert context.metrics_after.get(name) == value, (name, context.metrics_after.get(name))
