"""Steps for one model served by several hives on this machine, each hive pinned to its own
CPU core (``taskset``) so two workers of a model do not share one: replicas and placement by
cached prefix (issue 25)."""

from __future__ import annotations

import os
from typing import Any

from behave import given

from steps.hive_steps import _start_hive, _wait_state

__all__: list[str] = []


def _cores() -> list[int]:
    """The CPU cores this process may run on, in order (the hives are pinned among them)."""
    return sorted(os.sched_getaffinity(0))


@given('two hives "{first}" and "{second}", each pinned to its own CPU core, join the queen')
def step_two_pinned_hives(context: Any, first: str, second: str) -> None:
    cores = _cores()
    for index, name in enumerate((first, second)):
        core = cores[index % len(cores)]
        # The hive's workers inherit its CPU affinity and its environment: one thread each,
        # on its own core, so two workers of a model are two machines' worth of compute.
        _start_hive(
            context,
            name,
            prefix=("taskset", "-c", str(core)),
            env_extra={"RBEE_THREADS": "1"},
        )
    for name in (first, second):
        _wait_state(context, name, "ready", 60)
