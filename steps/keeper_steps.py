"""Steps that run the real programs as a user would, and read what they print."""

from __future__ import annotations

import shlex
import subprocess
import time
from typing import Any

from behave import then, when

from steps.support import processes
from steps.support.placeholders import expand


def _run(context: Any, program: str, args: list[str], timeout: float = 300) -> None:
    started = time.monotonic()
    context.result = subprocess.run(
        [*processes.command(program), *args],
        env=context.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    context.elapsed = time.monotonic() - started


@when("I run rbee-keeper {arguments}")
def step_run_keeper(context: Any, arguments: str) -> None:
    context.keeper_args = [
        *shlex.split(expand(context, arguments)),
        "--queen-url",
        context.queen_url,
    ]
    _run(context, "rbee-keeper", context.keeper_args)


@when('I run "{command_line}"')
def step_run_exactly(context: Any, command_line: str) -> None:
    """A program of rbee's, with exactly these arguments (no --queen-url added)."""
    program, *args = shlex.split(expand(context, command_line))
    _run(context, program, args)


@when("I run the same command again")
def step_run_keeper_again(context: Any) -> None:
    context.previous = context.result
    _run(context, "rbee-keeper", context.keeper_args)


@then("stdout is the same as the first time")
def step_same_stdout(context: Any) -> None:
    first, again = context.previous.stdout, context.result.stdout
    assert first.strip() and first == again, (first, again)


@when("I run queen-rbee on the same port")
def step_run_queen_again(context: Any) -> None:
    _run(context, "queen-rbee", ["--port", str(context.port)], timeout=60)


@when("I run queen-rbee on the same port with {options}")
def step_run_queen_options(context: Any, options: str) -> None:
    _run(context, "queen-rbee", ["--port", str(context.port), *shlex.split(options)], timeout=60)


@when("I run rbee-hive with {options}")
def step_run_hive_options(context: Any, options: str) -> None:
    _run(context, "rbee-hive", shlex.split(options), timeout=60)


@when("I run llm-worker-rbee with {options}")
def step_run_worker_options(context: Any, options: str) -> None:
    _run(context, "llm-worker-rbee", shlex.split(options), timeout=60)


def _describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@then("the keeper exits with code {code:d}")
@then("it exits with code {code:d}")
def step_exit_code(context: Any, code: int) -> None:
    assert context.result.returncode == code, _describe(context.result)


@then('stdout is exactly "{text}"')
def step_stdout_exact(context: Any, text: str) -> None:
    expected = text.encode().decode("unicode_escape")
    assert context.result.stdout == expected, _describe(context.result)


@then('stdout does not contain "{text}"')
def step_stdout_lacks(context: Any, text: str) -> None:
    assert text not in context.result.stdout, _describe(context.result)


@then('stdout contains "{text}"')
def step_stdout_contains(context: Any, text: str) -> None:
    assert text in context.result.stdout, _describe(context.result)


@then("stderr shows, in order:")
def step_stderr_order(context: Any) -> None:
    lines = context.result.stderr.splitlines()
    position = 0
    for row in context.table:
        while position < len(lines) and row["text"] not in lines[position]:
            position += 1
        assert position < len(lines), f"missing or out of order: {row['text']!r}\n" + _describe(
            context.result
        )
        position += 1


@then('stderr shows "{text}"')
def step_stderr_shows(context: Any, text: str) -> None:
    assert text in context.result.stderr, _describe(context.result)


@then('stderr does not show "{text}"')
def step_stderr_not(context: Any, text: str) -> None:
    assert text not in context.result.stderr, _describe(context.result)


@then("stdout is empty")
def step_stdout_empty(context: Any) -> None:
    assert context.result.stdout == "", _describe(context.result)


@then('its stderr contains "{text}"')
def step_stderr_contains(context: Any, text: str) -> None:
    assert text in context.result.stderr, _describe(context.result)


@then('stderr\'s last line contains "{text}"')
def step_stderr_last(context: Any, text: str) -> None:
    last = context.result.stderr.strip().splitlines()[-1]
    assert text in last, _describe(context.result)
