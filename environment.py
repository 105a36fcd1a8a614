"""behave hooks: every scenario gets its own state dir, port and processes, all cleaned up.

Real programs only: queens, keepers and workers are real processes on loopback, and the
model is the real default model. The converted model cache is shared by the whole run
(``RBEE_TEST_MODELS_DIR``, else a folder under the system temp dir), so the one-off GGUF
conversion happens once, not per scenario.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from steps.support import processes
from steps.support.failures import FailureReport


def before_all(context: Any) -> None:
    # Every program a scenario starts inherits /dev/null as stdin unless the step gives it
    # one: `rbee-keeper infer` reads a piped stdin as (part of) its prompt, and a runner
    # that leaves an open pipe on behave's stdin (CI) would make it wait there forever.
    quiet = os.open(os.devnull, os.O_RDONLY)
    os.dup2(quiet, 0)
    os.close(quiet)
    models = os.environ.get("RBEE_TEST_MODELS_DIR") or str(
        Path(tempfile.gettempdir()) / "rbee-test-models"
    )
    Path(models).mkdir(parents=True, exist_ok=True)
    context.models_dir = models
    context.failures = FailureReport()


def after_all(context: Any) -> None:
    # Printed before behave's own summary, past behave's capture: the tail of a CI log
    # then says what failed.
    if report := context.failures.render():
        out = sys.__stdout__ or sys.stdout
        out.write(report + "\n\n")
        out.flush()


def before_scenario(context: Any, scenario: Any) -> None:
    context.home = Path(tempfile.mkdtemp(prefix="rbee-bdd-"))
    context.env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RBEE_") and not key.startswith("XDG_")
    }
    context.env.update(
        HOME=str(context.home / "home"),  # nothing may touch the real home
        RBEE_HOME=str(context.home),
        RBEE_MODELS_DIR=context.models_dir,
        PYTHONUNBUFFERED="1",
    )
    (context.home / "home").mkdir()
    context.port = processes.free_port()
    context.queen_url = f"http://127.0.0.1:{context.port}"
    context.started = []  # processes this scenario started, stopped after it
    # Then these run, last first (a second machine's teardown, a browser): before the state
    # dir is deleted, unlike behave's add_cleanup, so that nothing they write outlives it.
    context.cleanups = []


def after_scenario(context: Any, scenario: Any) -> None:
    for process in context.started:
        processes.stop(process)
    processes.kill_leftovers(context.home)
    for cleanup in reversed(context.cleanups):
        cleanup()
    if scenario.status == "passed":
        shutil.rmtree(context.home, ignore_errors=True)
    else:
        step = next((s for s in scenario.all_steps if s.status == "failed"), None)
        context.failures.add(
            str(scenario.location),
            f"{step.keyword} {step.name}" if step else "(a hook)",
            (step.error_message if step else None) or str(scenario.status),
            context.home,
        )
        print(f"  state dir kept for inspection: {context.home}")
