"""Steps for hives on a second machine: a network namespace with its own sshd (see
support/remote_host.py), reached by the keeper through ssh."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from behave import given, then, when

from steps.support import processes
from steps.support.remote_host import RemoteHost


def _remote_home(context: Any) -> Path:
    """RBEE_HOME of every ssh session on the second machine: its processes carry it, so the
    scenario finds them, and stops them when it ends."""
    return context.home / "remote"


@given('a second machine reached through ssh as "{alias}"')
def step_second_machine(context: Any, alias: str) -> None:
    assert alias == RemoteHost.alias, f"the generated ssh config names it {RemoteHost.alias}"
    remote = RemoteHost(
        context.home / "ssh",
        {"HOME": str(context.home / "remote-home"), "RBEE_HOME": str(_remote_home(context))},
    )
    context.cleanups.append(remote.close)
    remote.start()
    context.remote = remote
    context.env["RBEE_SSH_COMMAND"] = remote.ssh_command


def _start_queen(context: Any, key: str, host: str, *extra: str) -> None:
    context.env["RBEE_API_KEY"] = key  # the queen, and the keeper's calls to it
    context.queen = processes.start_queen(
        context.env, context.home, context.port, *extra, host=host
    )
    context.started.append(context.queen)
    context.queen_url = f"http://{host}:{context.port}"


@given('a queen with the API key "{key}" listens on this machine\'s address towards it')
def step_queen_towards(context: Any, key: str) -> None:
    _start_queen(context, key, context.remote.local_address)


@given(
    'a queen with the API key "{key}" and a heartbeat of {seconds:g} seconds listens on this '
    "machine's address towards it"
)
def step_queen_towards_heartbeat(context: Any, key: str, seconds: float) -> None:
    _start_queen(context, key, context.remote.local_address, "--heartbeat", str(seconds))


@given('a queen with the API key "{key}" listens on loopback only')
def step_queen_loopback(context: Any, key: str) -> None:
    _start_queen(context, key, "127.0.0.1")


@given('the keeper\'s API key is "{key}"')
def step_keeper_key(context: Any, key: str) -> None:
    context.env["RBEE_API_KEY"] = key


@then("it took less than {seconds:d} seconds")
def step_took(context: Any, seconds: int) -> None:
    assert context.elapsed < seconds, f"it took {context.elapsed:.1f} s"


@then('stdout says hive "{name}" is ready at the second machine\'s address')
def step_ready_at_remote(context: Any, name: str) -> None:
    expected = f"hive {name} is ready at http://{context.remote.address}:8600"
    assert expected in context.result.stdout, context.result.stdout


def _remote_processes(context: Any) -> dict[int, str]:
    return processes.rbee_processes(_remote_home(context))


@then("no command line on the second machine holds the API key")
def step_no_key_in_argv(context: Any) -> None:
    key = context.env["RBEE_API_KEY"]
    found = _remote_processes(context)
    assert found, "no rbee process runs on the second machine"
    for pid, cmdline in found.items():
        assert context.remote.in_namespace(pid), (pid, cmdline)
        assert key not in cmdline, cmdline


@then('the worker of hive "{name}" runs on the second machine, at its address')
def step_remote_worker(context: Any, name: str) -> None:
    from steps.hive_steps import _hives

    workers = _hives(context)[name]["workers"]
    assert len(workers) == 1, workers
    worker = workers[0]
    assert worker["url"].startswith(f"http://{context.remote.address}:"), worker
    assert context.remote.in_namespace(int(worker["pid"])), worker
    assert "rbee_worker" in _remote_processes(context)[int(worker["pid"])]


@then("nothing of rbee runs on the second machine within {seconds:d} seconds")
def step_remote_quiet(context: Any, seconds: int) -> None:
    processes.wait_until(
        lambda: not _remote_processes(context), seconds, "the second machine's rbee to stop"
    )


@when("the link to the second machine is cut")
def step_cut(context: Any) -> None:
    context.remote.cut_link()
    context.cut_at = time.monotonic()


@then('the queen\'s log has no "{text}"')
def step_queen_log_clean(context: Any, text: str) -> None:
    log = (context.home / f"queen-{context.port}.test.log").read_text(errors="replace")
    assert text not in log, log[-3000:]
