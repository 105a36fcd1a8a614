"""What the keeper prints of what peers wrote: narration and errors without escape
sequences; tokens exact to a pipe, without escape sequences on a terminal."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from test_keeper_cli import FakeQueen, run, serving

from rbee_core.credentials import API_KEY_ENV
from rbee_core.narration import Narration
from rbee_core.plugins import create_plugin_manager
from rbee_keeper.cli import build_cli
from rbee_keeper.context import Keeper
from rbee_keeper.infer import follow
from rbee_keeper.terminal import TerminalSink

ANSWER = "clear\x1b[2Jscreen\r\n\ttab"


class Stream:
    """A client whose job stream is given."""

    def __init__(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        self._events = events

    def events(self, _url: str, on_retry: Any = None) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from self._events


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _keeper() -> Keeper:
    pm = create_plugin_manager("keeper")
    pm.register(TerminalSink(bars=False), name="keeper-terminal")
    return Keeper(pm)


def test_narration_from_a_peer_is_printed_without_its_escape_sequences(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = TerminalSink(bars=False)
    sink.rbee_narrate(Narration("rbee-hive", "download", "got \x1b[2J\x1b]0;t\x07evil.gguf"))
    assert capsys.readouterr().err == "[rbee-hive] got evil.gguf\n"


def _follow(monkeypatch: pytest.MonkeyPatch, stdout: io.StringIO, error: bool = False) -> str:
    monkeypatch.setattr("sys.stdout", stdout)
    end = ("error", {"message": "bad \x1b[2J thing"}) if error else ("end", {})
    client = Stream([("token", {"text": ANSWER}), end])
    return follow(_keeper(), client, {"job_id": "j", "sse_url": "/s"}, verbose=False)


def test_tokens_to_a_pipe_are_the_exact_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    assert _follow(monkeypatch, out) == ANSWER
    assert out.getvalue() == ANSWER + "\n"


def test_tokens_to_a_terminal_lose_escapes_but_the_answer_kept_is_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = Tty()
    assert _follow(monkeypatch, out) == ANSWER  # what a chat keeps for its next turn
    assert out.getvalue() == "clearscreen\n\ttab\n"


def test_a_job_error_from_a_peer_is_one_clean_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(click.ClickException) as err:
        _follow(monkeypatch, io.StringIO(), error=True)
    assert err.value.message == "the job failed: bad  thing"


def test_the_keeper_reads_its_key_from_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "")  # restored after the test, which sets it
    cli, keeper = build_cli()

    @cli.command("show-key")
    def show_key() -> None:
        import os

        click.echo(os.environ.get(API_KEY_ENV))

    key = tmp_path / "key"
    key.write_text("s3cret\n")
    key.chmod(0o600)
    result = CliRunner().invoke(cli, ["--api-key-file", str(key), "show-key"], obj=keeper)
    assert result.exit_code == 0 and result.output == "s3cret\n"
    key.chmod(0o644)
    result = CliRunner().invoke(cli, ["--api-key-file", str(key), "show-key"], obj=keeper)
    assert result.exit_code == 2
    assert "readable by others (mode 644): run chmod 600" in result.output


class HostileQueen(FakeQueen):
    """A queen relaying what a hostile hive registered: escapes in its name and label."""

    def do_GET(self) -> None:
        if self.path == "/hives":
            hive = {
                "name": "evil\x1b[2J",
                "state": "ready",
                "url": "http://127.0.0.1:1",
                "last_heartbeat": None,
                "devices": [],
                "models": ["m\x1b]0;title\x07odel"],
                "workers": [],
                "labels": {"k": "v\x1bc"},
            }
            self._json(200, {"hives": [hive]})
        elif self.path == "/jobs/bad":
            self._json(404, {"error": {"code": "unknown_job", "message": "no job 'b\x1b[2Jad'"}})
        else:
            super().do_GET()


@pytest.fixture
def hostile() -> Iterator[str]:
    yield from serving(HostileQueen)


def test_hive_list_and_errors_show_a_peers_words_without_escapes(hostile: str) -> None:
    listed = run("hive", "list", "--queen-url", hostile)
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.output and "\x07" not in listed.output
    assert "evil  ready" in listed.output and "models:  model" in listed.output
    assert "labels:  k=v" in listed.output
    failed = run("jobs", "show", "bad", "--queen-url", hostile)
    assert failed.exit_code == 1 and "no job 'bad'" in failed.output, failed.output
