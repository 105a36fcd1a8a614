"""rbee_core.credentials: the key from a file only its owner reads, and a command line
rid of ``--api-key KEY`` (what a queen started with it re-executes itself with)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rbee_core import credentials
from rbee_core.credentials import (
    API_KEY_ENV,
    KeyFileError,
    read_key_file,
    use_key_file,
    without_key_argument,
)


def _key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "key"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_key_is_the_first_line_stripped(tmp_path: Path) -> None:
    assert read_key_file(_key_file(tmp_path, "  s3cret \nsecond line\n")) == "s3cret"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_file_others_may_read_is_refused_naming_the_fix(tmp_path: Path, mode: int) -> None:
    path = _key_file(tmp_path, "s3cret\n", mode)
    with pytest.raises(KeyFileError, match=f"readable by others .*chmod 600 {path}"):
        read_key_file(path)


def test_a_read_only_file_of_its_owner_is_fine(tmp_path: Path) -> None:
    assert read_key_file(_key_file(tmp_path, "s3cret", 0o400)) == "s3cret"


@pytest.mark.parametrize("text", ["", "\n", "   \nkey-on-line-two\n"])
def test_an_empty_first_line_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(KeyFileError, match="is empty"):
        read_key_file(_key_file(tmp_path, text))


def test_a_missing_file_and_a_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"cannot read API key file .*No such file"):
        read_key_file(tmp_path / "nope")
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyFileError):
        read_key_file(folder)


def test_use_key_file_sets_the_environment_or_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "")  # restored after the test, which sets it
    use_key_file(str(_key_file(tmp_path, "s3cret\n")), "queen-rbee")
    assert os.environ[API_KEY_ENV] == "s3cret"
    with pytest.raises(SystemExit) as exit_:
        use_key_file(str(tmp_path / "nope"), "queen-rbee")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("queen-rbee: cannot read API key file") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "left"),
    [
        (["--api-key", "K", "--port", "1"], ["--port", "1"]),
        (["--port", "1", "--api-key=K"], ["--port", "1"]),
        (["--api-k", "K"], []),  # an abbreviation argparse accepts
        (["--host", "K", "--api-key", "K"], ["--host", "K"]),  # only the option's value
        (["--api-key-file", "K"], ["--api-key-file", "K"]),  # another option
    ],
)
def test_the_key_argument_is_removed_whatever_its_spelling(
    args: list[str], left: list[str]
) -> None:
    assert without_key_argument(args, "K") == left


def test_a_program_re_executed_without_the_key_keeps_its_pid_and_gets_it_from_the_environment(
    tmp_path: Path,
) -> None:
    script = tmp_path / "prog.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys, time
            from rbee_core.credentials import reexec_without_key
            if "--api-key" in sys.argv:
                reexec_without_key(sys.argv[sys.argv.index("--api-key") + 1])
            print(os.getpid(), os.environ.get("RBEE_API_KEY"), sys.argv[1:], flush=True)
            time.sleep(30)
            """
        )
    )
    process = subprocess.Popen(
        [sys.executable, "-X", "utf8", str(script), "--api-key", "s3cret-key", "--port", "7"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(credentials.__file__).parents[1])},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split(maxsplit=2)
        assert line[:2] == [str(process.pid), "s3cret-key"]
        assert line[2].strip() == "['--port', '7']"
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert b"s3cret-key" not in cmdline and b"-X\0utf8" in cmdline
    finally:
        process.kill()
        process.wait()
