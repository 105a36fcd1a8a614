"""Narration crosses process boundaries as JSON and comes back the same."""

from __future__ import annotations

from rbee_core.narration import Narration


def test_from_json_is_the_inverse_of_to_json_with_the_job_attached() -> None:
    sent = Narration("rbee-hive", "download", "12 of 98 MB", "job-1", {"done": 12, "total": 98})
    assert Narration.from_json(sent.to_json(), "job-1") == sent
    plain = Narration("llm-worker-rbee", "waiting", "waiting for room")
    assert Narration.from_json(plain.to_json()) == plain
