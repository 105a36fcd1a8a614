"""A worker retires only when no job runs, waits or was just accepted, and refuses jobs
after: the hive can unload it without losing a job the queen sent it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rbee_core.backends import Chunk, GenerationParams
from rbee_core.errors import WorkerRetired
from rbee_worker.runner import Runner


class Model:
    """A loaded model that answers one token."""

    device = "cpu"

    def generate(self, prompt: str, params: Any, cancelled: Any) -> Iterator[Chunk]:
        yield Chunk(text="hi", finish_reason="stop")


def test_an_accepted_job_keeps_the_worker_from_retiring_until_it_is_over() -> None:
    runner = Runner(Model())  # type: ignore[arg-type]
    release = runner.claim()  # accepted, its generation not started yet
    assert runner.busy
    assert runner.retire(0) == "it has 1 job(s) running or queued"
    release()
    release()  # once only
    assert not runner.busy and runner.retire(0) is None and runner.retired
    with pytest.raises(WorkerRetired) as info:
        runner.claim()
    assert info.value.code == "worker_retired" and info.value.status == 503


def test_a_worker_that_just_finished_a_job_does_not_retire_yet() -> None:
    runner = Runner(Model())  # type: ignore[arg-type]

    async def one_job() -> None:
        release = runner.claim()
        try:
            async for _ in runner.generate("p", GenerationParams(max_tokens=1)):
                pass
        finally:
            release()

    asyncio.run(one_job())
    assert runner.jobs_served == 1 and time.time() - runner.idle_since < 1
    assert runner.retire(min_idle=30) is not None and not runner.retired
    runner.idle_since -= 60
    assert runner.retire(min_idle=30) is None
    runner.close()
