"""The queen's changes as one stream of events: hives, jobs and load, for the console and
any tool that would rather listen than poll.

A sampler looks at the queen once a tick and appends what changed since the last look: a
``hives`` event (the whole list, when any hive, device, worker or model changed), a
``jobs`` event (the jobs whose state, worker or token count moved) and a ``stats`` sample
(output tokens/s, jobs running and queued, time to first token). Looking, rather than
hooking every token, costs the same however fast the jobs run, and nothing at all until
someone listens: the sampler starts with the first listener or the first job.

Event ids are numbers that start from the queen's start time in milliseconds, so a client
that reconnects with ``Last-Event-ID`` gets exactly what it missed, and one whose id comes
from an earlier queen (or fell out of the kept window) gets a fresh ``snapshot``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rbee_core.jobs import Job, JobState
from rbee_core.queen_api import QueenApi

__all__ = ["Feed", "FeedEvent", "brief"]

log = logging.getLogger("rbee.console")

KEEP_EVENTS = 2000  # about ten minutes of a busy queen: reconnects within it miss nothing
KEEP_STATS = 600  # samples behind the charts: ten minutes at one a second
SNAPSHOT_JOBS = 100  # finished jobs a new listener is shown (live ones always)
PREVIEW = 120  # characters of a job's prompt in its brief


@dataclass(frozen=True, slots=True)
class FeedEvent:
    id: int
    type: str
    data: str  # JSON


def brief(record: dict[str, Any]) -> dict[str, Any]:
    """A job as the feed shows it: its ``summary`` without the answer and the request, plus
    the figures a list wants (time to first token, duration, a prompt preview, the error)."""
    request = record.get("request") or {}
    result = record.get("result") or {}
    created, first, ended = (
        record.get("created_at"),
        record.get("first_token_at"),
        record.get("finished_at"),
    )
    prompt = request.get("prompt") or ""
    if not prompt and request.get("embed"):
        prompt = f"(embed {len(request['embed'])} texts)"
    return {
        "job_id": record["job_id"],
        "state": record["state"],
        "model": record["model"],
        "worker": record.get("worker"),
        "created_at": created,
        "started_at": record.get("started_at"),
        "first_token_at": first,
        "finished_at": ended,
        "tokens": record.get("tokens", 0),
        "ttft": round(first - created, 3) if first and created else None,
        "duration": round(ended - created, 3) if ended and created else None,
        "prompt": prompt[:PREVIEW],
        "error": result.get("message") if record["state"] == JobState.FAILED.value else None,
    }


def _mark(job: Job) -> tuple[Any, ...]:
    """What, when it changes, makes a job worth a new brief (cheap to compute)."""
    return (job.state, job.worker, job.tokens, job.first_token_at is not None)


class Feed:
    """The events of one queen. Use from the queen's event loop only."""

    def __init__(self, queen: QueenApi, tick: float = 1.0) -> None:
        self.queen = queen
        self.tick = tick
        self._events: deque[FeedEvent] = deque(maxlen=KEEP_EVENTS)
        self._stats: deque[dict[str, Any]] = deque(maxlen=KEEP_STATS)
        self._last_id = int(time.time() * 1000)
        self._wakeup = asyncio.Event()
        self._hives = ""
        self._marks: dict[str, tuple[Any, ...]] = {}
        self._tokens: dict[str, int] = {}
        self._looked_at = time.time()
        self._task: asyncio.Task[None] | None = None

    @property
    def last_id(self) -> int:
        return self._last_id

    def start(self) -> None:
        """Start sampling (once; later calls do nothing)."""
        if self._task is None:
            self._look(first=True)
            self._task = asyncio.create_task(self._run())
            self.queen.keep(self._task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                self._look()
            except Exception:  # a bad sample must not end the feed for good
                log.exception("the console feed could not sample the queen")

    def _append(self, type_: str, data: dict[str, Any]) -> None:
        self._last_id += 1
        self._events.append(FeedEvent(self._last_id, type_, json.dumps(data)))
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def since(self, after: int) -> list[FeedEvent] | None:
        """The events after ``after``; None when some of them are no longer kept (or the id
        is not one of this feed's): the client needs a snapshot."""
        oldest = self._events[0].id if self._events else self._last_id + 1
        if not oldest - 1 <= after <= self._last_id:
            return None
        return [event for event in self._events if event.id > after]

    async def wait(self, after: int, patience: float | None) -> bool:
        """Wait for an event after ``after``; False if ``patience`` seconds passed first."""
        wakeup = self._wakeup
        if self._last_id > after:
            return True
        try:
            await asyncio.wait_for(wakeup.wait(), patience)
        except TimeoutError:
            return False
        return True

    def snapshot(self) -> dict[str, Any]:
        """Everything a new listener shows: hives, recent and live jobs, the charts' history."""
        jobs = {r["job_id"]: r for r in self.queen.job_records(SNAPSHOT_JOBS)}
        for job in self.queen.jobs:  # memory is ahead of the records of live jobs
            jobs[job.id] = job.summary()
        return {
            "hives": self.hives(),
            "jobs": [brief(r) for r in jobs.values()],
            "stats": list(self._stats),
            "tick": self.tick,
        }

    def hives(self) -> list[dict[str, Any]]:
        """``GET /hives``, each worker with the slots the queen has in use on it."""
        hives = self.queen.hive_listing()
        loads = self.queen.worker_loads()
        for hive in hives:
            for worker in hive["workers"]:
                load = loads.get(worker["id"])
                worker["slots_in_use"] = load.running if load else 0
                worker["queued"] = load.waiting if load else 0
        return hives

    def _look(self, first: bool = False) -> None:
        now = time.time()
        hives = self.hives()
        wire = json.dumps(hives)
        if wire != self._hives:
            self._hives = wire
            if not first:
                self._append("hives", {"hives": hives})
        jobs = list(self.queen.jobs)
        changed = self._changed(jobs)
        if changed and not first:
            self._append("jobs", {"jobs": [brief(job.summary()) for job in changed]})
        sample = self._sample(jobs, now, count=not first)
        self._looked_at = now
        if not first:
            self._stats.append(sample)
            self._append("stats", sample)

    def _changed(self, jobs: Iterable[Job]) -> list[Job]:
        marks: dict[str, tuple[Any, ...]] = {}
        changed = []
        for job in jobs:
            marks[job.id] = mark = _mark(job)
            if self._marks.get(job.id) != mark:
                changed.append(job)
        self._marks = marks  # jobs that left memory are forgotten: they cannot change
        return changed

    def _sample(self, jobs: list[Job], now: float, count: bool) -> dict[str, Any]:
        since = self._looked_at
        tokens = 0
        seen: dict[str, int] = {}
        ttfts: list[float] = []
        for job in jobs:
            seen[job.id] = job.tokens
            before = self._tokens.get(job.id)
            if before is None:  # new to the feed: count it only if it is new to the queen
                before = 0 if job.created_at >= since else job.tokens
            tokens += job.tokens - before
            if job.first_token_at is not None and since < job.first_token_at <= now:
                ttfts.append(job.first_token_at - job.created_at)
        self._tokens = seen
        live = self.queen.jobs.live
        return {
            "t": round(now, 3),
            "tokens_per_s": round(tokens / max(now - since, 1e-3), 2) if count else 0.0,
            "running": sum(1 for job in live if job.state is JobState.RUNNING),
            "queued": sum(1 for job in live if job.state is JobState.QUEUED),
            "ttft": round(statistics.fmean(ttfts), 3) if ttfts else None,
        }
