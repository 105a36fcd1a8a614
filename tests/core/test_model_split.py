"""The split plan's rules (rbee_core.model_split), from numbers alone."""

from __future__ import annotations

import pytest

from rbee_core.errors import InvalidRequest, NoPlacement
from rbee_core.model_split import ModelPart, plan_split

MB = 1_000_000


def test_layers_go_in_proportion_to_room_and_the_worker_gets_the_most_room() -> None:
    plan = plan_split(
        "m", 500 * MB, 100 * MB, 40, [("small", 200 * MB), ("big", 500 * MB)], 50 * MB
    )
    assert plan.worker.hive == "big"
    assert [p.hive for p in plan.parts] == ["small"]
    assert plan.worker.layers + plan.parts[0].layers == 40
    assert plan.worker.layers > plan.parts[0].layers
    for share, free in ((plan.worker, 500 * MB), (plan.parts[0], 200 * MB)):
        assert share.bytes <= free


def test_the_fewest_hives_that_hold_it_are_used() -> None:
    free = [("a", 400 * MB), ("b", 350 * MB), ("c", 100 * MB)]
    plan = plan_split("m", 600 * MB, 100 * MB, 20, free, 50 * MB)
    assert [plan.worker.hive, *(p.hive for p in plan.parts)] == ["a", "b"]


def test_hives_named_by_the_user_are_all_used_the_first_running_the_worker() -> None:
    free = [("b", 300 * MB), ("a", 900 * MB)]
    plan = plan_split("m", 300 * MB, 100 * MB, 10, free, 50 * MB, use_all=True)
    assert plan.worker.hive == "b"
    assert plan.parts[0].hive == "a" and plan.parts[0].layers >= 1
    assert plan.worker.layers + plan.parts[0].layers == 10


def test_too_little_room_together_names_both_sizes() -> None:
    with pytest.raises(NoPlacement, match=r"needs 1\.0 GB .*more than the hives have free"):
        plan_split("m", 1000 * MB, 100 * MB, 30, [("a", 300 * MB), ("b", 300 * MB)], 50 * MB)


def test_one_hive_is_no_split() -> None:
    with pytest.raises(NoPlacement, match="two hives or more"):
        plan_split("m", 100 * MB, 10 * MB, 30, [("a", 300 * MB)], 50 * MB)


def test_the_plan_in_words_gives_each_share() -> None:
    plan = plan_split("m", 500 * MB, 100 * MB, 40, [("h1", 400 * MB), ("h2", 300 * MB)], 50 * MB)
    said = plan.describe("m", 500 * MB)
    assert said.startswith("no machine has room for model m (500.0 MB); splitting it: ")
    assert "on h1 (worker)" in said and "on h2" in said


def test_a_part_from_a_peer_is_checked_field_by_field() -> None:
    good = {"hive": "h2", "endpoint": "10.0.0.2:5000", "token": "t" * 20, "layers": 3}
    assert ModelPart.from_json(good).to_json() == good
    for bad in ({**good, "layers": 0}, {**good, "endpoint": "nohost"}, {**good, "token": ""}):
        with pytest.raises(InvalidRequest):
            ModelPart.from_json(bad)


def test_a_hive_reports_its_parts_in_its_heartbeat_checked_as_a_peer_message() -> None:
    from rbee_core.errors import InvalidRequest
    from rbee_core.messages import HiveHeartbeat, PartInfo

    beat = HiveHeartbeat("h2", "http://10.0.0.2:8600", [], [], [PartInfo("p1", "m", 13, "h1")])
    assert HiveHeartbeat.from_json(beat.to_json()) == beat
    bad = beat.to_json() | {"parts": [{"id": "p1", "model": "m", "layers": True, "for_hive": "h"}]}
    try:
        HiveHeartbeat.from_json(bad)
    except InvalidRequest as exc:
        assert exc.field == "parts" and "layers" in exc.message
    else:
        raise AssertionError("a part with layers=true was accepted")
