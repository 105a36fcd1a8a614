"""Steps about the API key's ways in (a file, the environment, never a command line), the
modes of the files rbee keeps, caps on what a client sends, and what reaches the terminal."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from behave import given, then, when

from steps.openai_steps import _attempt
from steps.support import processes
from steps.support.jobs import post_job
from steps.support.placeholders import default_gguf

ESCAPE = "\x1b[2J"  # "clear the screen"
EVIL_NAME = f"evil{ESCAPE}.gguf"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _key_file(context: Any, key: str, mode: int) -> Path:
    path = context.home / "api-key"
    path.write_text(f"{key}\n")
    path.chmod(mode)
    return path


def _without_key(context: Any) -> dict[str, str]:
    return {k: v for k, v in context.env.items() if k != "RBEE_API_KEY"}


def _start_queen(context: Any, *extra: str) -> None:
    context.queen = processes.start_queen(_without_key(context), context.home, context.port, *extra)
    context.started.append(context.queen)


@given('a queen is started with its API key "{key}" in a file of mode {mode}')
def step_queen_key_file(context: Any, key: str, mode: str) -> None:
    _start_queen(context, "--api-key-file", str(_key_file(context, key, int(mode, 8))))
    context.env["RBEE_API_KEY"] = key  # the keeper's, and the steps' calls, from now on


@when('queen-rbee is run with its API key "{key}" in a file of mode {mode}')
def step_run_queen_key_file(context: Any, key: str, mode: str) -> None:
    path = _key_file(context, key, int(mode, 8))
    context.result = subprocess.run(
        [*processes.command("queen-rbee"), "--port", str(context.port), "--api-key-file", path],
        env=_without_key(context),
        capture_output=True,
        text=True,
        timeout=60,
    )


@given('a queen is started with --api-key "{key}" on its command line')
def step_queen_cmdline_key(context: Any, key: str) -> None:
    _start_queen(context, "--api-key", key)
    context.env["RBEE_API_KEY"] = key


@then('the queen\'s log warns "{text}"')
def step_queen_log_warns(context: Any, text: str) -> None:
    log = (context.home / f"queen-{context.port}.test.log").read_text()
    assert f"queen-rbee: warning: {text}" in log, log


@then('the queen\'s command line in /proc does not contain "{key}"')
def step_cmdline_clean(context: Any, key: str) -> None:
    cmdline = Path(f"/proc/{context.queen.pid}/cmdline").read_bytes()
    assert b"queen-rbee" in cmdline or b"rbee_queen" in cmdline, cmdline  # still the queen
    assert key.encode() not in cmdline, cmdline


@given("files are created with umask 022 unless rbee says otherwise")
def step_umask(context: Any) -> None:
    # The programs a scenario starts inherit behave's umask: a usual user's 022 here, so a
    # file left at the default mode would be world-readable and the scenario would see it.
    previous = os.umask(0o022)
    context.cleanups.append(lambda: os.umask(previous))


def _state(context: Any) -> Path:
    return Path(context.home) / "state"


@then("these files of the state dir have mode 600:")
def step_state_files(context: Any) -> None:
    for row in context.table:
        path = _state(context) / row["file"]
        assert path.exists(), f"{path} does not exist"
        assert _mode(path) == 0o600, f"{path} has mode {_mode(path):o}"


@then("every log in the state dir's logs folder has mode 600")
def step_logs(context: Any) -> None:
    logs = sorted((_state(context) / "logs").iterdir())
    names = [p.name for p in logs]
    assert any(n.startswith("hive-") for n in names), names
    assert any(n.startswith("worker-") for n in names), names
    bad = {p.name: f"{_mode(p):o}" for p in logs if _mode(p) != 0o600}
    assert not bad, bad


@then("the state dir and its logs folder have mode 700")
def step_dirs(context: Any) -> None:
    for path in (_state(context), _state(context) / "logs"):
        assert _mode(path) == 0o700, f"{path} has mode {_mode(path):o}"


@then("the queen's log in the state dir's logs folder has mode 600")
def step_queen_log(context: Any) -> None:
    path = _state(context) / "logs" / f"queen-{context.port}.log"
    assert path.exists(), sorted(p.name for p in path.parent.iterdir())
    assert _mode(path) == 0o600, f"{path} has mode {_mode(path):o}"


@when("I POST a job with {n:d} messages")
def step_many_messages(context: Any, n: int) -> None:
    messages = [{"role": "user", "content": "hi"}] * n
    context.response = post_job(context, prompt="hi", messages=messages)


@when("I POST a job with a stop string of {n:d} characters")
def step_long_stop(context: Any, n: int) -> None:
    context.response = post_job(context, prompt="hi", stop=["s" * n])


@when("I ask the OpenAI client for a chat completion with a stop string of {n:d} characters")
def step_openai_long_stop(context: Any, n: int) -> None:
    _attempt(context, stop=["s" * n])


@given("the default model's GGUF file is also at a path whose name holds an escape sequence")
def step_evil_model(context: Any) -> None:
    # Not a symlink: the hive names a file: model by its resolved path.
    context.evil_model = context.home / EVIL_NAME
    try:
        os.link(default_gguf(), context.evil_model)
    except OSError:  # another file system
        shutil.copyfile(default_gguf(), context.evil_model)


@when('the keeper runs "{prompt}" on that model file')
def step_infer_evil(context: Any, prompt: str) -> None:
    args = ["infer", prompt, "--model", f"file:{context.evil_model}", "--max-tokens", "4"]
    context.result = subprocess.run(
        [*processes.command("rbee-keeper"), *args, "--queen-url", context.queen_url],
        env=context.env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


@then("stderr names the model file without its escape sequence")
def step_no_escape(context: Any) -> None:
    err = context.result.stderr
    assert "\x1b" not in err, repr(err)
    # The hive's narration names the file: it arrives, only without the escape.
    assert f"{context.home}/evil.gguf" in err, err
