"""What every engine inherits from BatchLoop: the context rule and closing each sampler."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rbee_core.batching import BatchLoop, EngineSettings, Sequence, beyond_context
from rbee_core.errors import InvalidRequest


class Counting:
    """A sampler that answers 7 and counts its closes."""

    def __init__(self) -> None:
        self.closed = 0

    def sample(self, logits: None) -> int:
        return 7

    def close(self) -> None:
        self.closed += 1


class Echo(BatchLoop[Counting]):
    """An engine whose every sequence samples one token a step, its cache one row each."""

    def slots_needed(self, seqs: list[Sequence[Counting]]) -> int:
        return sum(s.reserve for s in seqs)

    def step(self, joining: list[Sequence[Counting]]) -> None:
        self._active += joining
        for seq in self._active:
            seq.accept(seq.sampler.sample(None), end_of_sequence=False)
        for seq in [s for s in self._active if s.done]:
            self.release(seq)
        self._active = [s for s in self._active if not s.done]

    def reset(self) -> None:
        pass


@pytest.fixture
def engine() -> Iterator[Echo]:
    echo = Echo(EngineSettings(max_batch=2, kv_tokens=100, context_length=50), 64)
    echo.start()
    yield echo
    echo.close()


def test_past_the_trained_context_is_refused_before_the_cache_is_asked(engine: Echo) -> None:
    sampler = Counting()
    with pytest.raises(InvalidRequest) as info:
        engine.submit([1, 2, 3], 60, sampler, lambda: False)  # 63 > 50, and < 100
    assert info.value.field == "max_tokens"
    assert info.value.message == (
        "the prompt (3 tokens) plus max_tokens (60) need 63 positions; the model handles 50 "
        "(its training context)"
    )
    assert sampler.closed == 1  # refused: the engine closed what it was given


def test_the_rule_is_the_same_function_for_every_engine() -> None:
    fits = Sequence([1] * 10, 40, Counting(), lambda: False)
    assert beyond_context(fits, 50) is None
    assert beyond_context(fits, 49) == (
        "the prompt (10 tokens) plus max_tokens (40) need 50 positions; the model handles 49 "
        "(its training context)"
    )


def test_more_than_the_cache_holds_is_refused_naming_both_sizes() -> None:
    roomy = Echo(EngineSettings(max_batch=2, kv_tokens=30, context_length=1000), 64)
    holds = "need 43 KV cache slots; this worker's cache holds 30"
    with pytest.raises(InvalidRequest, match=holds):
        roomy.submit([1, 2, 3], 40, Counting(), lambda: False)


def test_a_sequence_that_ends_has_its_sampler_closed_once(engine: Echo) -> None:
    sampler = Counting()
    seq = engine.submit([1, 2], 3, sampler, lambda: False)
    assert list(seq) == [7, 7, 7] and seq.finish_reason == "length"
    engine.close()  # its thread has finished the step that released it
    assert sampler.closed == 1


def test_a_closed_engine_closes_the_sampler_it_turns_away(engine: Echo) -> None:
    engine.close()
    sampler = Counting()
    with pytest.raises(RuntimeError, match="shutting down"):
        engine.submit([1], 1, sampler, lambda: False)
    assert sampler.closed == 1
