"""``rbee-keeper chat`` without a terminal: the conversation it sends, its commands, its
multi-line input. (At a real terminal, with Ctrl-C, in features/everyday_use.feature.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from test_keeper_cli import FakeQueen, queen, serving

from rbee_keeper.chat import Conversation, read_message
from rbee_keeper.cli import build_cli

__all__ = ["queen"]  # the fixture, shared with test_keeper_cli


def lines(*given: str) -> Callable[[str], str]:
    """A ``read_line`` over ``given``, then the end of input."""
    queue = list(given)

    def read_line(_prompt: str) -> str:
        if not queue:
            raise EOFError
        return queue.pop(0)

    return read_line


def test_a_line_is_a_message() -> None:
    assert read_message(lines("hello", "next")) == "hello"


def test_a_block_between_triple_quotes_is_one_message() -> None:
    read = lines('"""first line', "", "third line", 'last"""', "after")
    assert read_message(read) == "first line\n\nthird line\nlast"
    assert read_message(read) == "after"


def test_a_block_on_one_line_and_an_unclosed_block_at_the_end() -> None:
    assert read_message(lines('"""just this"""')) == "just this"
    assert read_message(lines('"""', "a", "b")) == "a\nb"


def test_the_end_of_input_ends_reading() -> None:
    with pytest.raises(EOFError):
        read_message(lines())


def test_the_conversation_keeps_the_system_message_across_clear() -> None:
    talk = Conversation("m", system="Be brief.")
    talk.add_turn("hi", "hello")
    assert talk.messages_with("again") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"},
    ]
    talk.clear()
    assert talk.messages_with("x") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "x"},
    ]


def chat(queen: str, stdin: str, *args: str) -> Any:
    cli, keeper = build_cli()
    return CliRunner().invoke(
        cli, ["chat", "--queen-url", queen, *args], obj=keeper, input=stdin,
        catch_exceptions=False,
    )  # fmt: skip


def posted() -> list[dict[str, Any]]:
    return [body for method, path, body in FakeQueen.seen if (method, path) == ("POST", "/jobs")]


def test_each_turn_is_a_job_with_the_whole_conversation(queen: str) -> None:
    result = chat(queen, "Name the capital of France.\nAnd of Italy?\n", "--temperature", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Paris.\nParis.\n"  # the fake queen has one answer
    first, second = posted()
    assert first["messages"] == [{"role": "user", "content": "Name the capital of France."}]
    assert second["prompt"] == "And of Italy?" and second["temperature"] == 0
    assert second["messages"] == [
        {"role": "user", "content": "Name the capital of France."},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]


def test_narration_is_brief_unless_verbose(queen: str) -> None:
    brief = chat(queen, "hi\n")
    assert brief.stderr == "" and brief.stdout == "Paris.\n"
    verbose = chat(queen, "hi\n", "--verbose")
    assert "[queen-rbee] picked cpu" in verbose.stderr


def test_commands_clear_switch_and_leave(queen: str) -> None:
    stdin = "/help\nhi\n/clear\n/model other-model\nagain\n/bye\nnever sent\n"
    result = chat(queen, stdin, "--system", "Be brief.")
    assert result.exit_code == 0, result.output
    assert "/clear" in result.stderr and "/model M" in result.stderr
    first, second = posted()  # nothing after /bye
    assert first["model"] == "smollm2-135m"
    assert second["model"] == "other-model"
    assert second["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "again"},
    ]


def test_an_unknown_command_is_named_and_sends_nothing(queen: str) -> None:
    result = chat(queen, "/frobnicate\n")
    assert result.exit_code == 0
    assert "unknown command /frobnicate" in result.stderr
    assert posted() == []


class FailingQueen(FakeQueen):
    """Every job fails, as when its worker dies."""

    def do_GET(self) -> None:
        if self.path != "/jobs/job-1/stream":
            return super().do_GET()
        self.seen.append(("GET", self.path, None))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        error = {"code": "worker_died", "message": "the worker died"}
        self.wfile.write(f"id: 1\nevent: error\ndata: {json.dumps(error)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True


@pytest.fixture
def failing_queen() -> Iterator[str]:
    yield from serving(FailingQueen)


def test_a_failed_piped_question_ends_the_session_with_an_error(failing_queen: str) -> None:
    result = chat(failing_queen, "hi\nsecond\n")
    assert result.exit_code == 1
    assert "error: the job failed: the worker died" in result.stderr
    assert len(posted()) == 1
