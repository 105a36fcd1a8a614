"""Which hive runs a split worker: a hive that listens on loopback only cannot serve a part
to another machine, so when there is one it runs the worker."""

from __future__ import annotations

from rbee_core.model_split import plan_split
from rbee_queen.hives import HiveRecord
from rbee_queen.splits import _worker_first

MB = 10**6


def _names(hives: list[HiveRecord]) -> list[str]:
    return [h.name for h in hives]


def test_the_hive_with_most_room_runs_the_worker_when_every_hive_is_reachable() -> None:
    hives = [HiveRecord("a", "http://10.0.0.1:8600"), HiveRecord("b", "http://10.0.0.2:8600")]
    assert _names(_worker_first(hives, {"a": 100 * MB, "b": 300 * MB})) == ["b", "a"]


def test_a_hive_on_loopback_only_runs_the_worker_even_with_less_room() -> None:
    hives = [
        HiveRecord("remote", "http://10.0.0.2:8600"),
        HiveRecord("local", "http://127.0.0.1:8600"),
        HiveRecord("other", "http://10.0.0.3:8600"),
    ]
    free = {"remote": 300 * MB, "local": 200 * MB, "other": 250 * MB}
    assert _names(_worker_first(hives, free)) == ["local", "remote", "other"]


def test_a_chosen_worker_hive_stays_first_in_the_plan() -> None:
    free = [("local", 200 * MB), ("small", 120 * MB), ("big", 400 * MB)]
    plan = plan_split("m", 500 * MB, 100 * MB, 40, free, 50 * MB, worker_first=True)
    assert plan.worker.hive == "local"
    assert [p.hive for p in plan.parts] == ["big"]  # the fewest others: the roomiest
    assert plan.worker.layers + sum(p.layers for p in plan.parts) == 40
