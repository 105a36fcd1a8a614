"""Replicas: more workers of a busy model, within its ``max_replicas``, and at least its
``min_replicas`` kept.

Placement asks for a replica when every worker of a model is without room and jobs wait
(placement.py). The replica starts in the background, narrated in the job that caused it;
the jobs go on waiting in their model's line and take its slots once it is ready (the line
is poked). A replica that fails to start is narrated in that job and logged; no other
starts for that model for ``RETRY_AFTER`` seconds, and the jobs wait for the running
workers.

``min_replicas``: the first ``min_replicas`` workers the queen starts for a model are
pinned (keep-alive -1), so a hive never stops them for being idle, nor unloads them to make
room for another model; workers beyond that go by their keep-alive. Pinning at the start is
the simplest sound way: the hive already honours it, and nothing has to notice an unload and
load the model again (a re-spawn would pay the load the minimum is there to avoid).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from rbee_core.errors import RbeeError
from rbee_core.jobs import Job
from rbee_core.narration import Narration
from rbee_queen.fleet import Fleet, WorkerRef
from rbee_queen.hives import HiveRecord

__all__ = ["DEFAULT_MAX_REPLICAS", "RETRY_AFTER", "Replicas", "ordinal", "parse_replicas"]

DEFAULT_MAX_REPLICAS = 4
RETRY_AFTER = 30.0  # seconds after a failed replica before another of that model starts
PINNED = -1.0  # the keep-alive that pins a worker (rbee_hive)
log = logging.getLogger("rbee.queen")

Say = Callable[[Job, str, str], None]
Narrate = Callable[[Narration], None]

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def ordinal(n: int) -> str:
    return _ORDINALS[n - 1] if 0 < n <= len(_ORDINALS) else f"{n}th"


def parse_replicas(text: str) -> tuple[str, int, int]:
    """``MODEL=MIN:MAX`` (``--replicas``) as (model, min, max); ``ValueError`` saying why."""
    model, sep, limits = text.rpartition("=")
    low, colon, high = limits.partition(":")
    try:
        if not (sep and colon and model):
            raise ValueError
        least, most = int(low), int(high)
    except ValueError:
        raise ValueError(f"{text!r} is not MODEL=MIN:MAX (e.g. smollm2-135m=1:4)") from None
    if least < 0 or most < 1 or least > most:
        raise ValueError(f"{text!r}: need 0 <= MIN <= MAX and MAX >= 1")
    return model, least, most


@dataclasses.dataclass(frozen=True, slots=True)
class Starting:
    """A replica on its way."""

    hive: str
    device: str
    backend: str | None


class Replicas:
    def __init__(
        self,
        fleet: Fleet,
        say: Say,
        narration_of: Callable[[Job], Narrate],
        ready: Callable[[str], None],
        keep: Callable[[asyncio.Task[Any]], None],
        max_replicas: int = DEFAULT_MAX_REPLICAS,
        limits: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        self.fleet = fleet
        self.say = say
        self.narration_of = narration_of
        self.ready = ready  # a worker of the model is ready, or a start failed: poke its line
        self.keep = keep
        self.max_replicas = max_replicas
        self.limits = dict(limits or {})  # catalog name -> (min, max)
        self.starting: dict[str, list[Starting]] = {}
        self._failed_at: dict[str, float] = {}

    def bounds(self, model: str) -> tuple[int, int]:
        """(min_replicas, max_replicas) of ``model``."""
        return self.limits.get(model, (0, self.max_replicas))

    def workers(self, model: str) -> list[WorkerRef]:
        return [w for w in self.fleet.workers.values() if w.model == model]

    def count(self, model: str) -> int:
        """Workers of ``model``, running and starting."""
        return len(self.workers(model)) + len(self.starting.get(model, ()))

    def may_add(self, model: str) -> bool:
        """Whether another worker of ``model`` may start now: below its max, none starting,
        and no failed start in the last ``RETRY_AFTER`` seconds."""
        failed = self._failed_at.get(model)
        return (
            self.count(model) < self.bounds(model)[1]
            and not self.starting.get(model)
            and (failed is None or time.monotonic() - failed > RETRY_AFTER)
        )

    def keep_alive(self, model: str, asked: float | None) -> float | None:
        """The keep-alive of the next worker of ``model``: pinned while the model has fewer
        than its ``min_replicas``, else what the job asked (``None``: the hive's)."""
        return PINNED if self.count(model) < self.bounds(model)[0] else asked

    def start(self, job: Job, model: str, record: HiveRecord, device: str, waiting: int) -> None:
        """Start a replica of ``model`` on ``device`` of ``record`` in the background,
        narrated in ``job``, which caused it while ``waiting`` jobs wait."""
        running = self.workers(model)
        slots = sum(w.slots for w in running)
        where = ", ".join(sorted({w.hive for w in running}))
        if len(running) == 1:
            busy = f"all {slots} slots of {running[0].id} on {where} are busy"
        else:
            busy = f"all {slots} slots of the {len(running)} workers of {model} on {where} are busy"
        jobs = "1 job waits" if waiting == 1 else f"{waiting} jobs wait"
        nth = ordinal(self.count(model) + 1)
        self.say(
            job,
            "replica_start",
            f"{busy} and {jobs}: starting a {nth} worker of {model} on {record.name}",
        )
        entry = Starting(record.name, device, job.request.backend)
        keep_alive = self.keep_alive(model, job.request.keep_alive)
        self.starting.setdefault(model, []).append(entry)
        task = asyncio.create_task(
            self._run(job, model, record, entry, keep_alive), name=f"replica-{model}"
        )
        self.keep(task)

    async def _run(
        self,
        job: Job,
        model: str,
        record: HiveRecord,
        entry: Starting,
        keep_alive: float | None,
    ) -> None:
        told = self.narration_of(job)

        def listener(narration: Narration) -> None:
            if not job.log.closed:  # the job that caused it may have ended meanwhile
                told(narration)

        try:
            worker = await self.fleet.spawn_worker(
                record,
                job.request.model,
                entry.device,
                listener,
                keep_alive,
                entry.backend,
                room_wait=0.0,  # a replica unloads idle workers, never waits for busy ones
            )
        except Exception as exc:  # any failure: the jobs still have the running workers
            self._failed_at[model] = time.monotonic()
            log.warning("a replica of %s on %s did not start: %r", model, record.name, exc)
            why = f"{exc.code}: {exc.message}" if isinstance(exc, RbeeError) else repr(exc)
            if not job.log.closed:
                self.say(
                    job,
                    "replica_failed",
                    f"the new worker of {model} on {record.name} did not start ({why}); "
                    "the jobs wait for the running workers",
                )
        else:
            if not job.log.closed:
                self.say(job, "replica_ready", f"the new worker is awake: {worker.describe()}")
        finally:
            starting = self.starting.get(model, [])
            if entry in starting:
                starting.remove(entry)
            if not starting:
                self.starting.pop(model, None)
            self.ready(model)
