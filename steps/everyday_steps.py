"""Steps for everyday use: a chat at a real pseudo-terminal, pipes into infer, --json lines,
options typed before or after the command."""

from __future__ import annotations

import json
import shlex
import subprocess
from typing import Any

import httpx
from behave import then, when

from steps.support import processes
from steps.support.jobs import auth
from steps.support.placeholders import expand
from steps.support.pty_session import PtySession

PROMPT = ">>> "  # rbee_keeper.chat's prompt at a terminal
EVENT_TYPES = {"narration", "token", "end", "error"}


def _describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def _jobs(context: Any) -> list[dict[str, Any]]:
    """Every job's full record (``GET /jobs/{id}``), oldest first."""
    listed = httpx.get(f"{context.queen_url}/jobs", headers=auth(context), timeout=10).json()
    records = [
        httpx.get(f"{context.queen_url}/jobs/{j['job_id']}", headers=auth(context), timeout=10)
        for j in listed["jobs"]
    ]
    for response in records:
        assert response.status_code == 200, response.text
    return sorted((r.json() for r in records), key=lambda r: r["created_at"])


def _job_for(context: Any, prompt: str) -> dict[str, Any]:
    found = [r for r in _jobs(context) if r["request"]["prompt"] == prompt]
    assert len(found) == 1, (prompt, found)
    return found[0]


# -- a chat at a terminal ---------------------------------------------------------------


@when("I start rbee-keeper {arguments} at a terminal")
def step_start_at_terminal(context: Any, arguments: str) -> None:
    argv = [
        *processes.command("rbee-keeper"),
        *shlex.split(expand(context, arguments)),
        "--queen-url",
        context.queen_url,
    ]
    context.terminal = PtySession(argv, context.env)
    context.started.append(context.terminal.process)
    context.cleanups.append(context.terminal.close)
    context.answers = []
    context.questions = []
    context.terminal.wait_for(lambda out: PROMPT in out, 120, "the chat's first prompt")


def _type_line(context: Any, text: str) -> int:
    """Type ``text`` and Enter; where the terminal's output stood before."""
    mark = len(context.terminal.output)
    context.terminal.type(text + "\r")
    context.questions.append(text)
    return mark


def _after_echo(output: str, mark: int) -> str:
    """What the terminal showed after the typed line's echo."""
    _, newline, rest = output[mark:].partition("\n")
    return rest if newline else ""


@when('I type "{text}" and wait for the answer')
def step_type_and_wait(context: Any, text: str) -> None:
    mark = _type_line(context, text)
    context.terminal.wait_for(
        lambda out: PROMPT in _after_echo(out, mark), 300, f"the answer to {text!r}"
    )
    answer = _after_echo(context.terminal.output, mark).split(PROMPT)[0].strip()
    assert answer, f"no answer to {text!r}:\n{context.terminal.output}"
    context.answers.append(answer)


@when('I type "{text}" and press Ctrl-C once the answer flows')
def step_type_and_interrupt(context: Any, text: str) -> None:
    mark = _type_line(context, text)
    context.terminal.wait_for(
        lambda out: len(_after_echo(out, mark).strip()) >= 20, 300, f"tokens of {text!r}"
    )
    context.terminal.type("\x03")
    context.terminal.wait_for(
        lambda out: PROMPT in _after_echo(out, mark), 60, "the prompt after Ctrl-C"
    )
    context.job = {"job_id": _job_for(context, text)["job_id"]}


@when('I type "{text}"')
def step_type(context: Any, text: str) -> None:
    _type_line(context, text)


@then("the chat exits with code {code:d}")
def step_chat_exit(context: Any, code: int) -> None:
    returned = context.terminal.wait_exit(60)
    assert returned == code, f"exit {returned}; the terminal shows:\n{context.terminal.output}"


@then('the last answer contains "{text}"')
def step_last_answer(context: Any, text: str) -> None:
    assert text in context.answers[-1], context.terminal.output


@then('the terminal shows "{text}"')
def step_terminal_shows(context: Any, text: str) -> None:
    assert text in context.terminal.output, context.terminal.output


@then('the terminal does not show "{text}"')
def step_terminal_not(context: Any, text: str) -> None:
    assert text not in context.terminal.output, context.terminal.output


@then('the job for "{prompt}" was sent the first turn, its answer as the assistant\'s')
def step_sent_conversation(context: Any, prompt: str) -> None:
    first = _job_for(context, context.questions[0])
    second = _job_for(context, prompt)
    assert first["state"] == "completed", first
    assert first["text"].strip() == context.answers[0], (first["text"], context.answers)
    assert second["request"]["messages"] == [
        {"role": "user", "content": context.questions[0]},
        {"role": "assistant", "content": first["text"]},
        {"role": "user", "content": prompt},
    ], second["request"]


@then('the job for "{prompt}" was sent no earlier turn')
def step_sent_alone(context: Any, prompt: str) -> None:
    job = _job_for(context, prompt)
    assert job["request"]["messages"] == [{"role": "user", "content": prompt}], job["request"]


@then('the job for "{prompt}" becomes "{state}" within {seconds:d} seconds')
def step_job_for_becomes(context: Any, prompt: str, state: str, seconds: int) -> None:
    processes.wait_until(
        lambda: _job_for(context, prompt)["state"] == state, seconds, f"{prompt!r} {state}"
    )


# -- pipes, --json and options ----------------------------------------------------------


def _run_keeper(context: Any, args: list[str], stdin: str | None = None) -> None:
    context.result = subprocess.run(
        [*processes.command("rbee-keeper"), *args],
        env=context.env,
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


@when('I pipe "{text}" to rbee-keeper {arguments}')
def step_pipe(context: Any, text: str, arguments: str) -> None:
    args = [*shlex.split(expand(context, arguments)), "--queen-url", context.queen_url]
    _run_keeper(context, args, stdin=text + "\n")


@when("I run rbee-keeper with --queen-url first: {arguments}")
def step_run_options_first(context: Any, arguments: str) -> None:
    _run_keeper(context, ["--queen-url", context.queen_url, *shlex.split(arguments)])


@then("stderr is empty")
def step_stderr_empty(context: Any) -> None:
    assert context.result.stderr == "", _describe(context.result)


@then('the last job\'s prompt is "{text}"')
def step_last_prompt(context: Any, text: str) -> None:
    expected = text.encode().decode("unicode_escape")
    assert _jobs(context)[-1]["request"]["prompt"] == expected


def _json_lines(context: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in context.result.stdout.splitlines()]


@then("every line of stdout is one event as JSON")
def step_json_lines(context: Any) -> None:
    lines = _json_lines(context)
    assert lines, _describe(context.result)
    for line in lines:
        assert set(line) == {"event", "data"}, line
        assert line["event"] in EVENT_TYPES and isinstance(line["data"], dict), line


@then('the JSON lines\' tokens spell "{text}"')
def step_json_tokens(context: Any, text: str) -> None:
    tokens = [e["data"]["text"] for e in _json_lines(context) if e["event"] == "token"]
    assert "".join(tokens) == text, tokens


@then('the last JSON line is an end event of outcome "{outcome}"')
def step_json_end(context: Any, outcome: str) -> None:
    last = _json_lines(context)[-1]
    assert last["event"] == "end" and last["data"]["outcome"] == outcome, last


@when('I keep the keeper\'s result as "{name}"')
def step_keep_result(context: Any, name: str) -> None:
    context.kept = {**getattr(context, "kept", {}), name: context.result}


@then('stderr\'s last line is the same as for "{name}"')
def step_same_last_line(context: Any, name: str) -> None:
    kept = context.kept[name].stderr.strip().splitlines()[-1]
    last = context.result.stderr.strip().splitlines()[-1]
    assert last == kept, (kept, last)
