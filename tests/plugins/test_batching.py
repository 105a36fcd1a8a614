"""BatchEngine on a small random Llama: batched decoding answers exactly as decoding alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rbee_core.backends import GenerationParams
from rbee_core.batching import EngineSettings
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import InvalidRequest
from rbee_torch.backend import torch_model
from rbee_torch.batching import BatchEngine, Sequence
from rbee_torch.kv_budget import bytes_per_token, kv_cache_tokens, max_batch
from rbee_torch.sampling import Sampler

PROMPTS = [[1, 5, 9, 14, 3], [2, 7], [4, 4, 8, 15, 16, 23, 42, 11, 30], [6]]
GREEDY = GenerationParams(temperature=0)
CONTEXT = 256  # the model's max_position_embeddings


def settings(max_batch: int, kv_tokens: int, context_length: int = CONTEXT) -> EngineSettings:
    return EngineSettings(max_batch, kv_tokens, context_length)


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture
def engine(model: LlamaForCausalLM) -> Iterator[BatchEngine]:
    engine = BatchEngine(model, eos_ids=set(), settings=settings(8, 4096))
    yield engine
    engine.close()


def run(engine: BatchEngine, prompt: list[int], params: GenerationParams, n: int) -> list[int]:
    return list(engine.submit(prompt, n, Sampler(params, "cpu"), lambda: False))


def together(
    engine: BatchEngine, prompts: list[list[int]], params: list[GenerationParams], n: int
) -> list[Sequence]:
    """Submit all at once (so they share steps), then read them all."""
    seqs = [
        engine.submit(p, n, Sampler(s, "cpu"), lambda: False)
        for p, s in zip(prompts, params, strict=True)
    ]
    for seq in seqs:
        seq.tokens = list(seq)  # type: ignore[attr-defined]
    return seqs


def test_greedy_answers_match_alone_whatever_the_batch(engine: BatchEngine) -> None:
    alone = [run(engine, p, GREEDY, 12) for p in PROMPTS]
    seqs = together(engine, PROMPTS, [GREEDY] * len(PROMPTS), 12)
    assert [s.tokens for s in seqs] == alone  # type: ignore[attr-defined]
    assert all(s.finish_reason == "length" and s.generated == 12 for s in seqs)
    # Every row is prefilled whole (no prefix cache): its end reports no cached tokens.
    assert all(s.cached_tokens == 0 for s in seqs)


def test_seeded_sampling_matches_alone_whatever_the_batch(engine: BatchEngine) -> None:
    params = [GenerationParams(temperature=0.9, seed=s, top_k=20) for s in (1, 2, 3, 4)]
    alone = [run(engine, p, s, 10) for p, s in zip(PROMPTS, params, strict=True)]
    seqs = together(engine, PROMPTS, params, 10)
    assert [s.tokens for s in seqs] == alone  # type: ignore[attr-defined]
    assert alone[0] != alone[1]


def test_a_sequence_joins_a_running_batch_without_changing_anyone(engine: BatchEngine) -> None:
    alone_long = run(engine, PROMPTS[0], GREEDY, 40)
    alone_late = run(engine, PROMPTS[2], GREEDY, 10)
    long = engine.submit(PROMPTS[0], 40, Sampler(GREEDY, "cpu"), lambda: False)
    tokens = iter(long)
    first = [next(tokens) for _ in range(5)]  # the long one is under way
    late = run(engine, PROMPTS[2], GREEDY, 10)
    assert first + list(tokens) == alone_long
    assert late == alone_late


def test_cancelling_one_sequence_leaves_the_others_alone(engine: BatchEngine) -> None:
    alone = run(engine, PROMPTS[1], GREEDY, 30)
    stop = threading.Event()
    doomed = engine.submit(PROMPTS[0], 200, Sampler(GREEDY, "cpu"), stop.is_set)
    other = engine.submit(PROMPTS[1], 30, Sampler(GREEDY, "cpu"), lambda: False)
    got = []
    for i, token in enumerate(doomed):
        got.append(token)
        if i == 3:
            stop.set()
    assert doomed.finish_reason == "cancelled" and len(got) < 200
    assert list(other) == alone


def test_end_of_sequence_ends_without_emitting_it(model: LlamaForCausalLM) -> None:
    with_eos = BatchEngine(model, eos_ids=set(), settings=settings(4, 1024))
    first = run(with_eos, PROMPTS[0], GREEDY, 3)[0]
    with_eos.close()
    engine = BatchEngine(model, eos_ids={first}, settings=settings(4, 1024))
    seq = engine.submit(PROMPTS[0], 3, Sampler(GREEDY, "cpu"), lambda: False)
    assert list(seq) == [] and seq.finish_reason == "stop" and seq.generated == 1
    engine.close()


def test_a_sequence_that_does_not_fit_the_cache_waits_for_room(model: LlamaForCausalLM) -> None:
    # Each needs 5 + 20 = 25 slots: one fits in 40, two do not.
    engine = BatchEngine(model, eos_ids=set(), settings=settings(8, 40))
    first = engine.submit(PROMPTS[0], 20, Sampler(GREEDY, "cpu"), lambda: False)
    second = engine.submit(PROMPTS[0], 20, Sampler(GREEDY, "cpu"), lambda: False)
    tokens = iter(first)
    next(tokens)
    assert engine.active == 1 and engine.waiting == 1
    rest = list(tokens)
    notice, *answer = list(second)
    assert notice == (
        "waiting for room: the KV cache is full (1 jobs may use 25 of its 40 token slots); "
        "0 job(s) ahead of this one"
    )
    assert answer == run(engine, PROMPTS[0], GREEDY, 20)
    assert len(rest) == 19
    engine.close()


def test_a_sequence_that_can_never_fit_is_refused_by_name(model: LlamaForCausalLM) -> None:
    engine = BatchEngine(model, eos_ids=set(), settings=settings(8, 40))
    with pytest.raises(
        InvalidRequest, match="need 105 KV cache slots; this worker's cache holds 40"
    ):
        engine.submit(PROMPTS[0], 100, Sampler(GREEDY, "cpu"), lambda: False)
    engine.close()


def test_a_sequence_past_the_trained_context_is_refused_as_on_llamacpp(
    model: LlamaForCausalLM,
) -> None:
    engine = BatchEngine(model, eos_ids=set(), settings=settings(8, 4096))
    with pytest.raises(InvalidRequest) as info:
        engine.submit(PROMPTS[0], CONTEXT, Sampler(GREEDY, "cpu"), lambda: False)
    assert info.value.field == "max_tokens"
    assert info.value.message == (
        f"the prompt (5 tokens) plus max_tokens ({CONTEXT}) need {5 + CONTEXT} positions; "
        f"the model handles {CONTEXT} (its training context)"
    )
    assert len(run(engine, PROMPTS[0], GREEDY, CONTEXT - 5)) == CONTEXT - 5  # just fits
    engine.close()


def test_the_backend_builds_the_engine_from_its_settings(model: LlamaForCausalLM) -> None:
    tokenizer = SimpleNamespace(eos_token_id=3, chat_template=None)
    loaded = torch_model(model, tokenizer, "cpu")
    try:
        assert loaded.engine.settings == EngineSettings(
            max_batch=64,  # RBEE_MAX_BATCH is unset
            kv_tokens=kv_cache_tokens(model, "cpu", None),
            context_length=CONTEXT,
        )
        # The model's own end of sequence (LlamaConfig's 2) and the tokenizer's.
        assert loaded.max_batch == 64 and loaded.eos_ids == loaded.engine.eos_ids == {2, 3}
    finally:
        loaded.close()


def test_the_batch_never_exceeds_max_batch(model: LlamaForCausalLM) -> None:
    engine = BatchEngine(model, eos_ids=set(), settings=settings(2, 4096))
    seqs = [engine.submit(PROMPTS[1], 15, Sampler(GREEDY, "cpu"), lambda: False) for _ in range(5)]
    peak = 0
    while not all(s.done for s in seqs):
        peak = max(peak, engine.active)
        time.sleep(0.001)
    assert peak <= 2
    outputs = [list(s) for s in seqs]
    assert all(len([t for t in out if isinstance(t, int)]) == 15 for out in outputs)
    assert "waiting for room: the batch is full (2 jobs running); 2 job(s) ahead" in outputs[4][0]
    engine.close()


def test_a_prompt_that_fails_fails_alone(engine: BatchEngine) -> None:
    alone = run(engine, PROMPTS[0], GREEDY, 30)
    good = engine.submit(PROMPTS[0], 30, Sampler(GREEDY, "cpu"), lambda: False)
    tokens = iter(good)
    first = next(tokens)  # under way when the bad one joins
    bad = engine.submit([999], 5, Sampler(GREEDY, "cpu"), lambda: False)  # not in the vocab
    with pytest.raises(IndexError):
        list(bad)
    assert [first, *tokens] == alone


def test_a_failing_decode_step_fails_its_sequences_and_the_engine_carries_on(
    model: LlamaForCausalLM,
) -> None:
    engine = BatchEngine(model, eos_ids=set(), settings=settings(4, 4096))
    decode = engine._decode

    def broken() -> None:
        engine._decode = decode  # only once
        raise RuntimeError("device fault")

    engine._decode = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="device fault"):
        list(engine.submit(PROMPTS[1], 5, Sampler(GREEDY, "cpu"), lambda: False))
    assert len(run(engine, PROMPTS[1], GREEDY, 5)) == 5
    engine.close()


def test_close_ends_waiting_and_running_sequences(model: LlamaForCausalLM) -> None:
    engine = BatchEngine(model, eos_ids=set(), settings=settings(1, 4096))
    seqs = [engine.submit(PROMPTS[1], 200, Sampler(GREEDY, "cpu"), lambda: False) for _ in range(2)]
    engine.close()
    for seq in seqs:
        list(seq)
        assert seq.finish_reason == "cancelled"
    with pytest.raises(RuntimeError, match="shutting down"):
        engine.submit(PROMPTS[1], 5, Sampler(GREEDY, "cpu"), lambda: False)


def test_sampler_top_k_keeps_to_the_k_best() -> None:
    sampler = Sampler(GenerationParams(temperature=1.0, top_k=2, seed=1), "cpu")
    logits = torch.tensor([[0.0, 3.0, -1.0, 2.5]])
    assert {sampler.sample(logits) for _ in range(200)} == {1, 3}


def test_sampler_with_a_seed_repeats_itself() -> None:
    logits = torch.randn(1, 50)
    draws = [
        [Sampler(GenerationParams(temperature=1.0, seed=9), "cpu").sample(logits) for _ in range(1)]
        for _ in range(3)
    ]
    assert draws[0] == draws[1] == draws[2]


def test_cache_sizes_and_batch_limits() -> None:
    config = LlamaConfig(
        hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3
    )
    assert bytes_per_token(config, 4) == 30 * 2 * 3 * 64 * 4
    assert max_batch(config, None) == 64
    assert max_batch(config, EngineOptions.from_env({"RBEE_MAX_BATCH": "4"}).max_batch) == 4
    with pytest.raises(InvalidRequest, match="RBEE_MAX_BATCH"):
        EngineOptions.from_env({"RBEE_MAX_BATCH": "0"})


def test_admission_in_order_within_batch_cache_and_prefill_budgets(
    model: LlamaForCausalLM,
) -> None:
    def admitted(max_batch: int, kv_tokens: int, prefill_tokens: int) -> list[int]:
        engine = BatchEngine(model, set(), settings(max_batch, kv_tokens), prefill_tokens)
        engine.close()  # no engine thread: call its admission policy by hand
        for prompt in ([1] * 10, [2] * 10, [3] * 10):
            engine._pending.append(Sequence(prompt, 10, Sampler(GREEDY, "cpu"), lambda: False))
        return [seq.prompt[0] for seq in engine._admit()]

    assert admitted(8, 4096, 1000) == [1, 2, 3]
    assert admitted(2, 4096, 1000) == [1, 2]  # the batch is full
    assert admitted(8, 40, 1000) == [1, 2]  # 3 x 20 slots would overflow the cache
    assert admitted(8, 4096, 15) == [1, 2]  # the prefill budget is spent after two
    assert admitted(8, 4096, 1) == [1]  # always at least one
