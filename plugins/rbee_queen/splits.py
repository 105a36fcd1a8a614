"""Starting a worker whose model is split across hives (rbee_core.model_split).

When no hive has room for a model (its hive says it can *never* fit) and several together
do, or when the job asks for it (``split``), the queen asks the worker's hive what the
model needs and how many layers it has (``GET /models/footprint``), the other hives how
much room they have, plans the split, asks each other hive to serve its part
(``POST /parts``: a token for each), then starts the worker with the parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from rbee_core.addresses import is_loopback_host
from rbee_core.errors import NoPlacement, RbeeError
from rbee_core.jobs import Job
from rbee_core.messages import HiveCapabilities
from rbee_core.model_split import ModelPart, SplitPlan, plan_split
from rbee_core.narration import Narration
from rbee_queen import hive_client
from rbee_queen.fleet import Fleet, WorkerRef
from rbee_queen.hives import HiveRecord

__all__ = ["Splitter", "parts_of"]

log = logging.getLogger("rbee.queen")

Say = Callable[[Job, str, str], None]


class Splitter:
    """Plans and starts split workers on the fleet's hives; ``say`` narrates into a job."""

    def __init__(self, fleet: Fleet, say: Say) -> None:
        self.fleet = fleet
        self.say = say
        self._ids: dict[str, str] = {}  # a part's endpoint -> its id on its hive

    def hives(self, job: Job, avoid: frozenset[str]) -> list[HiveRecord]:
        """The hives a split of ``job``'s model may use: those it names, each ready (else
        ``NoPlacement`` naming it), or every ready one but those in ``avoid``."""
        named = job.request.split
        if named:
            records = [self.fleet.hives.get(name) for name in named]
            for record in records:
                if record.name in avoid:
                    raise NoPlacement(f"the split names hive {record.name}, lost to this job")
                if not record.ready:
                    raise NoPlacement(
                        f"hive {record.name} is {record.state}; the split cannot use it"
                    )
            return records
        return [r for r in self.fleet.hives.ready() if r.name not in avoid]

    async def start(
        self,
        job: Job,
        name: str,
        hives: list[HiveRecord],
        listener: Callable[[Narration], None],
        keep_alive: float | None,
        *,
        room_wait: float | None = None,
        why: RbeeError | None = None,
    ) -> WorkerRef:
        """A split worker of ``name`` for ``job`` on ``hives`` (the first runs the worker
        when the job named them; else the one with most room does). ``why``: what the
        whole worker's hive said (its ``DeviceTooSmall``), kept in a refusal."""
        asked = bool(job.request.split)
        free = await self._free(hives)
        if not asked:
            hives = _worker_first(hives, free)
        home = hives[0]
        url = f"{home.url}/models/footprint?model={quote(job.request.model)}"
        if job.request.backend:
            url += f"&backend={quote(job.request.backend)}"
        need = await hive_client.call(self.fleet.http, "GET", url, timeout=600.0)
        if need.get("split"):
            prefix = f"{why.message}; it cannot be split either: " if why else ""
            raise NoPlacement(prefix + str(need["split"]))
        free[home.name] = int(need["free"])
        try:
            plan = plan_split(
                name,
                int(need["total"]),
                int(need["runtime"]),
                int(need["layers"]),
                [(r.name, free[r.name]) for r in hives],
                int(need["part_runtime"]),
                use_all=asked,
                worker_first=not asked,
            )
        except NoPlacement as exc:
            if why is not None:
                exc.message = f"{why.message}; nor split across hives: {exc.message}"
            raise
        self.say(job, "split_plan", plan.describe(name, int(need["total"]), asked))
        parts = await self._start_parts(job, name, plan, str(need["backend"]))
        try:
            worker = await self.fleet.spawn_worker(
                self.fleet.hives.get(plan.worker.hive),
                job.request.model,
                "cpu",
                listener,
                keep_alive,
                str(need["backend"]),
                room_wait=room_wait,
                parts=[p for p, _ in parts],
            )
        except BaseException:
            await self._stop_parts(parts)
            raise
        return worker

    async def _free(self, hives: list[HiveRecord]) -> dict[str, int]:
        """Each hive's room in RAM now (its ``/capabilities``: the cpu device's free
        memory, less what its workers will grow to); a hive that does not answer has none."""

        async def room(record: HiveRecord) -> int:
            try:
                answer = await hive_client.call(
                    self.fleet.http, "GET", f"{record.url}/capabilities", timeout=10.0
                )
                caps = HiveCapabilities.from_json(answer)
            except RbeeError as exc:
                log.warning("hive %s cannot say its room for a split: %s", record.name, exc)
                return 0
            return next((d.free_memory for d in caps.devices if d.id == "cpu"), 0)

        found = await asyncio.gather(*(room(r) for r in hives))
        return {r.name: n for r, n in zip(hives, found, strict=True)}

    async def _start_parts(
        self, job: Job, name: str, plan: SplitPlan, backend: str
    ) -> list[tuple[ModelPart, HiveRecord]]:
        """Ask each part's hive to serve it; stops those started if one fails."""
        started: list[tuple[ModelPart, HiveRecord]] = []
        try:
            for share in plan.parts:
                record = self.fleet.hives.get(share.hive)
                body = {
                    "model": name,
                    "layers": share.layers,
                    "bytes": share.bytes,
                    "for_hive": plan.worker.hive,
                    "backend": backend,
                }
                answer = await hive_client.call(
                    self.fleet.http, "POST", f"{record.url}/parts", json=body, timeout=90.0
                )
                said = answer["part"]
                part = ModelPart(share.hive, said["endpoint"], said["token"], share.layers)
                started.append((part, record))
                self._ids[part.endpoint] = str(said["id"])
                self.say(
                    job,
                    "split_part",
                    f"hive {share.hive} serves {share.layers} layers of {name} at {part.endpoint}",
                )
        except BaseException:
            await self._stop_parts(started)
            raise
        return started

    async def _stop_parts(self, parts: list[tuple[ModelPart, HiveRecord]]) -> None:
        for part, record in parts:
            part_id = self._ids.pop(part.endpoint, None)
            if part_id is None:
                continue
            with contextlib.suppress(RbeeError):
                await hive_client.call(
                    self.fleet.http, "DELETE", f"{record.url}/parts/{part_id}", timeout=10.0
                )


def _on_loopback(record: HiveRecord) -> bool:
    return is_loopback_host(urlsplit(record.url).hostname or "")


def _worker_first(hives: list[HiveRecord], free: dict[str, int]) -> list[HiveRecord]:
    """``hives`` with the one to run the worker first: the one with most room, unless some
    listen on loopback only. Those are on the queen's machine and no other machine reaches
    them, so one of them runs the worker (it reaches the others); never a part for a
    worker elsewhere."""
    by_room = sorted(hives, key=lambda r: -free[r.name])
    local = [r for r in by_room if _on_loopback(r)]
    if not local or len(local) == len(by_room):
        return by_room
    return [local[0], *(r for r in by_room if r is not local[0])]


def parts_of(worker: WorkerRef) -> tuple[str, ...]:
    """The hives holding parts of ``worker``'s model."""
    return tuple(hive for hive, _ in worker.parts)
