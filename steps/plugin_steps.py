"""Steps about plugins installed next to rbee."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from behave import given, then, when


@given('the plugin "{name}" is installed from {where}')
def step_plugin_installed(context: Any, name: str, where: str) -> None:
    names = {ep.name for ep in entry_points(group="rbee")}
    assert name in names, (
        f"the {name!r} plugin is not installed (found: {sorted(names)}); "
        f"install it with: pip install --no-deps ./{where}"
    )


@then("stdout has {n:d} words")
def step_word_count(context: Any, n: int) -> None:
    words = context.result.stdout.split()
    assert len(words) == n, (len(words), context.result.stdout)


@when("I remember stdout")
def step_remember(context: Any) -> None:
    assert context.result.returncode == 0, context.result.stderr
    context.remembered = context.result.stdout


@then("stdout is what I remembered")
def step_same(context: Any) -> None:
    assert context.result.returncode == 0, context.result.stderr
    assert context.result.stdout == context.remembered, (context.remembered, context.result.stdout)
