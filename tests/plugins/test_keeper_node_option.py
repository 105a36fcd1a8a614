"""The handoff's ``--node`` names the same thing as ``--hive`` on the keeper's job commands."""

from __future__ import annotations

from rbee_keeper.infer import infer


def test_node_is_another_name_for_hive() -> None:
    for flag in ("--node", "--hive"):
        context = infer.make_context("infer", ["hello", flag, "alpha"])
        assert context.params["hive"] == "alpha", (flag, context.params)
