"""StopMatcher: stop strings that span chunk boundaries, with partial matches held back."""

from __future__ import annotations

import itertools

import pytest

from rbee_core.messages import FinishReason
from rbee_core.stops import StopMatcher


def run(stops: tuple[str, ...], chunks: list[str]) -> tuple[list[str], bool, str]:
    """Feed chunks until a stop; return what was emitted per chunk, whether it stopped, and
    what flush() gives at the end."""
    matcher = StopMatcher(stops)
    out = []
    for chunk in chunks:
        text, stopped = matcher.feed(chunk)
        out.append(text)
        if stopped:
            return out, True, matcher.flush()
    return out, False, matcher.flush()


def test_without_stops_text_passes_through() -> None:
    matcher = StopMatcher(())
    assert matcher.feed("hello") == ("hello", False)
    assert matcher.feed("") == ("", False)
    assert matcher.feed(" world") == (" world", False)
    assert matcher.flush() == ""


def test_stop_within_one_chunk() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("hello END and more") == ("hello ", True)
    assert matcher.flush() == ""


def test_stop_at_the_very_start() -> None:
    assert StopMatcher(("END",)).feed("END") == ("", True)


def test_partial_match_is_held_back_until_completed() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("hello EN") == ("hello ", False)
    assert matcher.feed("D tail") == ("", True)


def test_partial_match_is_released_when_it_turns_out_not_to_match() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("hello EN") == ("hello ", False)
    assert matcher.feed("TRY") == ("ENTRY", False)
    assert matcher.flush() == ""


def test_stop_split_over_many_chunks() -> None:
    matcher = StopMatcher(("<|end|>",))
    assert matcher.feed("answer") == ("answer", False)
    for char in "<|end|":
        assert matcher.feed(char) == ("", False)
    assert matcher.feed(">") == ("", True)


def test_flush_returns_what_is_held_back() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("the E") == ("the ", False)
    assert matcher.flush() == "E"
    assert matcher.flush() == ""


def test_flush_after_a_complete_release_is_empty() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("plain text") == ("plain text", False)
    assert matcher.flush() == ""


def test_earliest_stop_wins() -> None:
    assert StopMatcher(("world", "lo")).feed("hello world") == ("hel", True)
    assert StopMatcher(("lo", "world")).feed("hello world") == ("hel", True)


def test_longest_partial_among_stops_is_held() -> None:
    matcher = StopMatcher(("abc", "bcd"))
    assert matcher.feed("xab") == ("x", False)
    assert matcher.feed("cd") == ("", True)


def test_overlapping_partial_match() -> None:
    # "aa" might start "aab"; then "ab" shows the match starts one character later.
    matcher = StopMatcher(("aab",))
    assert matcher.feed("aa") == ("", False)
    assert matcher.feed("ab") == ("a", True)


def test_repeated_prefix_characters_are_released_in_order() -> None:
    matcher = StopMatcher(("aab",))
    assert matcher.feed("a") == ("", False)
    assert matcher.feed("a") == ("", False)
    assert matcher.feed("a") == ("a", False)
    assert matcher.feed("c") == ("aac", False)


def test_multichar_stop_after_newlines() -> None:
    matcher = StopMatcher(("\n\n",))
    assert matcher.feed("line one\n") == ("line one", False)
    assert matcher.feed("line two") == ("\nline two", False)
    assert matcher.feed("\n") == ("", False)
    assert matcher.feed("\nrest") == ("", True)


TEXT = "The quick brown fox <STOP> jumps"


def splits(text: str, pieces: int) -> list[list[str]]:
    result = []
    for cuts in itertools.combinations(range(1, len(text)), pieces - 1):
        bounds = (0, *cuts, len(text))
        result.append([text[a:b] for a, b in itertools.pairwise(bounds)])
    return result


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_any_chunking_stops_at_the_same_place(pieces: int) -> None:
    expected = TEXT[: TEXT.index("<STOP>")]
    for chunks in splits(TEXT, pieces):
        out, stopped, rest = run(("<STOP>", "<END>"), chunks)
        assert stopped, chunks
        assert "".join(out) == expected, chunks
        assert rest == ""


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_any_chunking_without_a_stop_loses_nothing(pieces: int) -> None:
    text = "a <STO b <ST c <"
    for chunks in splits(text, pieces):
        out, stopped, rest = run(("<STOP>",), chunks)
        assert not stopped, chunks
        assert "".join(out) + rest == text, chunks
        # Only a possible start of the stop string is ever held back.
        assert rest in ("", "<"), chunks


def test_the_stop_string_that_ended_the_text_is_told_in_the_closing_chunk() -> None:
    matcher = StopMatcher(("###", "END"))
    assert matcher.feed("one EN") == ("one ", False)
    assert matcher.feed("D ### two") == ("", True)
    assert matcher.hit == "END"  # the first to appear, not the first listed
    closing = list(matcher.closing_chunks(FinishReason.STOP, 3, 2))
    assert closing[-1].stop_sequence == "END"


def test_no_stop_string_is_told_at_the_end_of_sequence_or_at_max_tokens() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("no stop here") == ("no stop here", False)
    assert list(matcher.closing_chunks(FinishReason.STOP, 3, 2))[-1].stop_sequence is None
    assert list(matcher.closing_chunks(FinishReason.LENGTH, 3, 2))[-1].stop_sequence is None
