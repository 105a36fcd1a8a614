"""The queen's worker table against its hives' reports: a worker whose connection broke
stays gone while a heartbeat older than the loss still lists it (features/failover.feature
moved a job back onto its killed worker when one did)."""

from __future__ import annotations

import asyncio

from rbee_core.messages import WorkerInfo
from rbee_queen.fleet import Fleet
from rbee_queen.hives import HiveRecord


def _info(worker_id: str) -> WorkerInfo:
    return WorkerInfo(id=worker_id, hive="alpha", model="m", device="cpu", url="http://127.0.0.1:9")


def _table() -> tuple[Fleet, HiveRecord]:
    fleet = Fleet("http://127.0.0.1:8500", heartbeat=1.0, hive_timeout=None)
    record = HiveRecord("alpha", "http://127.0.0.1:9")
    record.workers = [_info("w1"), _info("w2")]
    fleet.sync_workers(record)
    return fleet, record


def test_a_dead_worker_stays_gone_while_a_stale_report_lists_it() -> None:
    async def check() -> None:
        fleet, record = _table()
        try:
            fleet.drop_worker("w1", dead=True)
            fleet.sync_workers(record)  # the hive has not noticed yet
            assert set(fleet.workers) == {"w2"}
            record.workers = [_info("w2")]  # now it has
            fleet.sync_workers(record)
            record.workers = [_info("w1"), _info("w2")]  # an id listed again is news
            fleet.sync_workers(record)
            assert set(fleet.workers) == {"w1", "w2"}
        finally:
            await fleet.http.aclose()

    asyncio.run(check())


def test_a_worker_dropped_for_another_reason_comes_back_with_its_hives_report() -> None:
    async def check() -> None:
        fleet, record = _table()
        try:
            fleet.drop_worker("w1")  # e.g. its hive was silent a while: it may live
            fleet.sync_workers(record)
            assert set(fleet.workers) == {"w1", "w2"}
        finally:
            await fleet.http.aclose()

    asyncio.run(check())
