"""Tables that stay aligned whatever the length of the names in them."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from rbee_keeper.cli import build_cli
from rbee_keeper.tables import Column, render_table, shorten_middle


def test_text_that_fits_is_left_alone() -> None:
    assert shorten_middle("smollm2-135m", 12) == "smollm2-135m"
    assert shorten_middle("", 5) == ""


@pytest.mark.parametrize("width", [1, 2, 3, 7, 10, 20, 29])
def test_a_shortened_text_has_exactly_the_width_and_keeps_head_and_tail(width: int) -> None:
    text = "worker-of-smollm2-135m-on-cuda-0-of-hive-beta"
    short = shorten_middle(text, width)
    assert len(short) == width
    assert "…" in short
    head, _, tail = short.partition("…")
    assert text.startswith(head) and text.endswith(tail)
    assert abs(len(head) - len(tail)) <= 1  # no slash in the tail: halves


def test_a_path_keeps_its_file_name() -> None:
    path = "file:/home/someone/models/very/deep/folder/SmolLM2-135M-Instruct.Q4_1.gguf"
    short = shorten_middle(path, 44)
    assert len(short) == 44
    assert short.endswith("/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert short.startswith("file:/home/")


def test_a_file_name_longer_than_the_column_is_cut_in_its_middle_too() -> None:
    short = shorten_middle("/m/" + "x" * 40 + ".gguf", 12)
    assert len(short) == 12 and short.endswith(".gguf") and short.startswith("/m/")


def test_nothing_fits_in_no_width() -> None:
    assert shorten_middle("abc", 0) == ""


def test_columns_line_up_with_long_and_short_cells() -> None:
    columns = (Column("NAME", 10), Column("SIZE", right=True), Column("PATH"))
    lines = render_table(
        columns,
        [("short", "1 MB", "/a"), ("a-very-long-model-name", "100.0 MB", "/b/c")],
    )
    assert lines[0].split() == ["NAME", "SIZE", "PATH"]
    # Every column starts at the same place on every line.
    starts = {line.index(cell) for line, cell in zip(lines, ("NAME", "short", "a-ve"), strict=True)}
    assert starts == {0}
    assert len({line.rindex(" ") for line in lines}) == 1  # PATH starts at one place
    assert "a-ver…name" in lines[2] and len(lines[2].split()[0]) == 10
    assert lines[1].split()[1:3] == ["1", "MB"]
    assert all(line == line.rstrip() for line in lines)


def test_worker_list_stays_aligned_with_a_long_model_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    long_model = "file:/home/someone/models/some/deep/folder/Llama-3.1-8B-Instruct.Q4_K_M.gguf"
    workers: list[dict[str, Any]] = [
        {"id": "worker-1-1", "hive": "localhost", "model": long_model, "backend": "llamacpp",
         "quantization": "Q4_K_M", "device": "cpu", "state": "idle", "jobs_served": 3,
         "memory": 5_000_000_000},
        {"id": "worker-1-2", "hive": "localhost", "model": "smollm2-135m", "backend": "torch",
         "device": "cpu", "state": "busy", "jobs_served": 12, "memory": None},
    ]  # fmt: skip
    monkeypatch.setattr("rbee_keeper.hive_commands.fetch_list", lambda *_: workers)
    cli, keeper = build_cli()
    result = CliRunner().invoke(cli, ["worker", "list"], obj=keeper, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert "Llama-3.1-8B-Instruct.Q4_K_M.gguf" in lines[1] and "…" in lines[1]
    for title in ("BACKEND", "DEVICE", "STATE"):
        column = lines[0].index(title)
        assert lines[1][column - 2 : column] == "  " and lines[1][column] != " "
        assert lines[2][column - 2 : column] == "  " and lines[2][column] != " "


def test_cells_from_peers_reach_the_terminal_without_escape_sequences() -> None:
    lines = render_table(
        [Column("NAME", max_width=20), Column("LABEL")],
        [("hive\x1b[2J", "k=\x1b]0;pwned\x07v\r")],
    )
    assert lines[1].split() == ["hive", "k=v"]
    assert not any(ch in "".join(lines) for ch in "\x1b\x07\r")
