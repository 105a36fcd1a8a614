"""Options where people type them, and the prompt from a pipe: through click's CliRunner
against the fake queen of test_keeper_cli (the queen's real wire format)."""

from __future__ import annotations

import json
from typing import Any

import click
import pytest
from click.testing import CliRunner
from test_keeper_cli import EVENTS, FakeQueen, queen

from rbee_keeper.cli import add_common_options, build_cli
from rbee_keeper.context import Keeper, pass_keeper
from rbee_keeper.infer import combine_prompt

__all__ = ["queen"]  # the fixture, shared with test_keeper_cli


@pytest.fixture(autouse=True)
def _no_queen_url_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RBEE_QUEEN_URL", raising=False)


def run(*args: str, input: str | None = None) -> Any:
    cli, keeper = build_cli()
    return CliRunner().invoke(cli, list(args), obj=keeper, input=input, catch_exceptions=False)


def posted_jobs() -> list[dict[str, Any]]:
    return [body for method, path, body in FakeQueen.seen if (method, path) == ("POST", "/jobs")]


@pytest.mark.parametrize(
    "args",
    [
        ["-q", "infer", "hi", "--queen-url", "{url}"],
        ["infer", "hi", "-q", "--queen-url", "{url}"],
        ["infer", "--quiet", "hi", "--queen-url", "{url}"],
    ],
)
def test_quiet_silences_narration_before_or_after_the_command(queen: str, args: list[str]) -> None:
    result = run(*(a.format(url=queen) for a in args))
    assert result.exit_code == 0, result.output
    assert result.stdout == "Paris.\n"
    assert result.stderr == ""


def test_without_quiet_the_narration_is_on_stderr(queen: str) -> None:
    result = run("infer", "hi", "--queen-url", queen)
    assert "[queen-rbee] picked cpu" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--queen-url", "{url}", "jobs", "list"],
        ["jobs", "list", "--queen-url", "{url}"],
        ["jobs", "--queen-url", "{url}", "list"],
        ["--queen-url", "http://127.0.0.1:9", "jobs", "list", "--queen-url", "{url}"],
    ],
)
def test_queen_url_before_or_after_the_command(queen: str, args: list[str]) -> None:
    result = run(*(a.format(url=queen) for a in args))
    assert result.exit_code == 0, result.output
    assert "job-1" in result.stdout


def test_queen_url_typed_beats_the_environment(queen: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBEE_QUEEN_URL", "http://127.0.0.1:9")
    assert run("--queen-url", queen, "jobs", "list").exit_code == 0
    failed = run("jobs", "list")
    assert failed.exit_code == 1 and "http://127.0.0.1:9" in failed.output


def test_every_command_takes_both_options() -> None:
    cli, _ = build_cli()

    def walk(command: click.Command) -> Any:
        yield command
        for sub in getattr(command, "commands", {}).values():
            yield from walk(sub)

    for command in walk(cli):
        opts = {o for p in command.params for o in getattr(p, "opts", [])}
        assert {"-q", "--quiet", "--queen-url"} <= opts, command.name


def test_a_third_party_command_gets_them_too(queen: str) -> None:
    @click.command()
    @pass_keeper
    def hello(keeper: Keeper) -> None:
        keeper.narrate("hello", "saying hello")
        click.echo(keeper.queen_url)

    cli, keeper = build_cli()
    cli.add_command(hello)
    add_common_options(cli)  # as build_cli does once plugins added theirs
    runner = CliRunner()
    result = runner.invoke(cli, ["hello", "-q", "--queen-url", queen], obj=keeper)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{queen}\n" and result.stderr == ""


def test_a_command_s_own_short_q_is_left_alone() -> None:
    @click.command()
    @click.option("-q", "query")
    def find(query: str) -> None:
        click.echo(query)

    group = click.Group(commands=[find])
    add_common_options(group)
    result = CliRunner().invoke(group, ["find", "-q", "bees"], obj=None)
    assert result.output == "bees\n"


# -- the prompt from stdin ----------------------------------------------------------------


def test_the_prompt_is_read_from_a_pipe(queen: str) -> None:
    result = run("infer", "--queen-url", queen, input="Name the capital of France.\n")
    assert result.exit_code == 0, result.output
    assert posted_jobs()[0]["prompt"] == "Name the capital of France."


def test_a_dash_reads_stdin(queen: str) -> None:
    result = run("infer", "-", "--queen-url", queen, input="hello there")
    assert result.exit_code == 0, result.output
    assert posted_jobs()[0]["prompt"] == "hello there"


def test_an_instruction_and_a_piped_document_are_combined(queen: str) -> None:
    result = run("infer", "Summarise this.", "--queen-url", queen, input="Bees make honey.\n")
    assert result.exit_code == 0, result.output
    assert posted_jobs()[0]["prompt"] == "Summarise this.\n\nBees make honey."


def test_combining_ignores_what_is_empty() -> None:
    assert combine_prompt("hi", "") == "hi"
    assert combine_prompt(None, "  \n") is None
    assert combine_prompt("a\n", "\nb\n") == "a\n\nb"


def test_no_prompt_at_a_terminal_is_a_usage_error(
    queen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rbee_keeper.infer.stdin_is_piped", lambda: False)
    result = run("infer", "--queen-url", queen)
    assert result.exit_code == 2
    assert "PROMPT is missing" in result.output
    assert posted_jobs() == []


def test_an_empty_pipe_is_a_usage_error(queen: str) -> None:
    result = run("infer", "--queen-url", queen, input="")
    assert result.exit_code == 2 and "the prompt is empty" in result.output


def test_system_sends_messages(queen: str) -> None:
    result = run("infer", "hi", "--system", "Answer in French.", "--queen-url", queen)
    assert result.exit_code == 0, result.output
    job = posted_jobs()[0]
    assert job["prompt"] == "hi"
    assert job["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "hi"},
    ]


def test_system_with_raw_is_a_clear_error(queen: str) -> None:
    result = run("infer", "hi", "--system", "x", "--raw", "--queen-url", queen)
    assert result.exit_code == 2 and "--system" in result.output and "--raw" in result.output
    assert posted_jobs() == []


def test_json_prints_every_event_as_a_line(queen: str) -> None:
    result = run("infer", "hi", "--json", "--queen-url", queen)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["event"], e["data"]) for e in lines] == EVENTS
    assert "Paris" not in result.stderr  # the answer only in the JSON


@pytest.mark.parametrize(
    ("stdin", "piped"),
    [("devnull", False), ("pipe", True), ("file", True)],
)
def test_only_a_pipe_or_a_file_on_stdin_is_read(stdin: str, piped: bool, tmp_path: Any) -> None:
    """/dev/null (what a service or a test runner gives) is no prompt: infer with a PROMPT
    argument must not wait on it."""
    import subprocess
    import sys

    code = "from rbee_keeper.infer import stdin_is_piped; print(stdin_is_piped())"
    document = tmp_path / "notes.txt"
    document.write_text("notes")
    with open(document) as file:
        given: dict[str, Any] = {
            "devnull": {"stdin": subprocess.DEVNULL},
            "pipe": {"input": "a prompt"},
            "file": {"stdin": file},
        }[stdin]
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, **given
        )
    assert done.stdout.strip() == str(piped), done.stderr


# -- a job's options: the job contract's fields -------------------------------------------


def test_every_job_field_a_person_types_is_an_option_of_infer_and_chat() -> None:
    from rbee_core.job_request import JobRequest
    from rbee_keeper.chat import chat
    from rbee_keeper.infer import infer
    from rbee_keeper.job_options import NOT_OPTIONS

    fields = set(JobRequest.__struct_fields__)
    assert set(NOT_OPTIONS) < fields  # each names a field of the contract
    for command in (infer, chat):
        options = {p.name for p in command.params if isinstance(p, click.Option)}
        assert fields - set(NOT_OPTIONS) <= options, command.name


def test_each_job_option_reaches_the_job_as_its_field(queen: str) -> None:
    from rbee_core.job_request import JobRequest

    given = {
        "-m": "tiny", "--max-tokens": "5", "--temperature": "0", "--top-p": "0.5",
        "--top-k": "3", "--seed": "7", "--stop": "x", "--node": "alpha", "--device": "cpu",
        "--backend": "torch", "--keep-alive": "-1", "--timeout": "9",
    }  # fmt: skip
    result = run("infer", "hi", *(a for pair in given.items() for a in pair), "--queen-url", queen)
    assert result.exit_code == 0, result.output
    (body,) = posted_jobs()
    assert body == {
        "model": "tiny", "prompt": "hi", "raw": False, "max_tokens": 5, "temperature": 0,
        "top_p": 0.5, "top_k": 3, "seed": 7, "stop": ["x"], "hive": "alpha", "device": "cpu",
        "backend": "torch", "keep_alive": -1, "timeout": 9,
    }  # fmt: skip
    assert JobRequest.from_json(body).to_json() == body  # the queen takes it as sent


def test_options_left_out_are_left_to_the_queen(queen: str) -> None:
    assert run("infer", "hi", "--queen-url", queen).exit_code == 0
    (body,) = posted_jobs()
    assert body == {
        "model": "smollm2-135m", "prompt": "hi", "raw": False, "max_tokens": 128,
        "temperature": 0.7,
    }  # fmt: skip
