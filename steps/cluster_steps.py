"""Steps for one model served by several hives on this machine, each hive pinned to its own
CPU core (``taskset``) so two workers of a model do not share one: replicas and placement by
cached prefix (issue 25)."""

from __future__ import annotations

import os
from typing import Any

from behave import given, then, when

from steps.hive_steps import _start_hive, _wait_state
from steps.support.conversations import cached_history, run_conversations
from steps.support.jobs import DEFAULT_MODEL, auth

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


@when(
    "{conversations:d} conversations of {turns:d} turns each run at once, every turn carrying "
    "the whole history after its user thinks up to {think:g} seconds"
)
def step_conversations(context: Any, conversations: int, turns: int, think: float) -> None:
    context.conversations = run_conversations(
        context.queen_url, auth(context), DEFAULT_MODEL, conversations, turns, 48, think
    )


def _table(context: Any) -> str:
    """Every turn, for a failure's message: where it ran and what it found cached there."""
    return "\n".join(
        f"conversation {t.conversation + 1} turn {t.turn + 1}: {t.worker} "
        f"cached {t.cached_tokens} of {t.prompt_tokens} prompt tokens"
        for turns in context.conversations
        for t in turns
    )


@then("the last turn of every conversation had over {tokens:n} prompt tokens")
def step_last_turn_long(context: Any, tokens: int) -> None:
    for turns in context.conversations:
        assert turns[-1].prompt_tokens > tokens, _table(context)


@then("both workers served turns")
def step_both_workers(context: Any) -> None:
    workers = {t.worker for turns in context.conversations for t in turns}
    assert len(workers) == 2 and None not in workers, _table(context)


@then(
    "at least {share:d}% of the turns after the first ran where their conversation's "
    "prefix was cached"
)
def step_prefix_cached(context: Any, share: int) -> None:
    print(_table(context))  # on a pass too, with behave --no-capture
    later = [t for turns in context.conversations for t in turns[1:]]
    hits = sum(sum(cached_history(turns)) for turns in context.conversations)
    assert hits * 100 >= share * len(later), (
        f"{hits} of {len(later)} later turns ran where their history was cached\n" + _table(context)
    )
    # The OpenAI answer says the same as the job's record.
    assert all(t.usage_cached_tokens == t.cached_tokens for t in later), _table(context)
