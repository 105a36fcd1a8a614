"""A worker generating a job again after its first worker was lost: it sends only what the
client does not have, and refuses to go on from text that differs (rbee_worker/replay.py)."""

from __future__ import annotations

import pytest

from rbee_core.errors import AnswerDiverged, InvalidRequest
from rbee_worker.replay import Replay, replay_from


def test_the_text_the_client_has_is_checked_and_not_sent_again() -> None:
    replay = Replay("The capital is")
    assert replay.after("The") == ""
    assert replay.after(" capital") == ""
    assert not replay.done
    assert replay.after(" is Paris") == " Paris"  # a chunk across the end: its rest goes on
    assert replay.done
    assert replay.after(".") == "."
    replay.ended()


def test_other_text_where_the_client_has_some_is_answer_diverged() -> None:
    replay = Replay("The capital is")
    replay.after("The")
    with pytest.raises(
        AnswerDiverged, match="'ity' at character 5 where the client already has 'api'"
    ):
        replay.after(" city")


def test_a_generation_that_ends_before_the_text_the_client_has_diverged() -> None:
    replay = Replay("The capital is")
    replay.after("The")
    with pytest.raises(AnswerDiverged, match="stopped after 3 of the 14 characters"):
        replay.ended()


def test_replay_is_taken_out_of_the_body_and_checked() -> None:
    body = {"model": "m", "prompt": "p", "replay": "The"}
    replay = replay_from(body)
    assert replay is not None and replay.text == "The" and "replay" not in body
    assert replay_from({"model": "m"}) is None
    assert replay_from({"replay": ""}) is None
    with pytest.raises(InvalidRequest, match="replay"):
        replay_from({"replay": 3})
