"""Prompt chunks of 63 tokens (the default) against wider ones (``RBEE_PREFILL_CHUNK``).

Both keep every answer the same alone, in a batch and from the cache; they trade speed
on an unseen prompt against reuse of a cached one. In one process, the default model
loaded once per chunk size (2 slots of 2,048 tokens each), taking turns ``--rounds``
times, time to the first token of:

- an unseen prompt of ~1,100 tokens (each round's differs from its first token);
- the chat's next turn after it (the prompt, a short answer, a short question): 63 reuses
  every shared token, a wider chunk only whole chunks.

Medians and each ratio to 63. Run from the project's virtualenv::

    python benchmarks/bench_prefill_chunk.py [--rounds 5] [--chunks 63,128,256,512]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench_kv_type import default_model

from rbee_core.backends import GenerationParams
from rbee_core.batching import EngineSettings
from rbee_core.engine_options import EngineOptions
from rbee_llamacpp.backend import threads
from rbee_llamacpp.engine import LlamaEngine
from rbee_llamacpp.generation import LlamaCppModel
from rbee_llamacpp.library import Context, ContextSettings, Model

FACTS = " ".join(f"bee {i} saw flower {i % 9}." for i in range(120))
FIRST = GenerationParams(temperature=0, max_tokens=1)


def load(chunk: int) -> LlamaCppModel:
    model = Model(default_model())
    settings = ContextSettings(2, 2048, max(256, chunk), threads(EngineOptions()), "f16")
    context = Context(model, settings)
    engine = LlamaEngine(context, model.vocab, EngineSettings(2, 2048, 8192), chunk)
    return LlamaCppModel(model, context, engine, "Q4_1")


def first_token(llm: LlamaCppModel, params: GenerationParams, prompt: str = "") -> float:
    started = time.perf_counter()
    for _ in llm.generate(prompt, params, lambda: False):
        pass
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--chunks", default="63,512", help="chunk sizes, the first the baseline")
    args = p.parse_args()
    rounds, chunks = args.rounds, [int(c) for c in args.chunks.split(",")]
    models = {chunk: load(chunk) for chunk in chunks}
    unseen: dict[int, list[float]] = {c: [] for c in chunks}
    turn: dict[int, list[float]] = {c: [] for c in chunks}
    reused: dict[int, int] = {}
    for r in range(rounds):
        prompt = f"Round {r}. Summarise: {FACTS}"
        conversation = (
            ("user", prompt),
            ("assistant", "Bees saw flowers."),
            ("user", "Which flower did bee 7 see?"),
        )
        chat = GenerationParams(temperature=0, max_tokens=1, messages=conversation)
        for chunk in chunks[r % len(chunks) :] + chunks[: r % len(chunks)]:
            llm = models[chunk]
            unseen[chunk].append(first_token(llm, FIRST, prompt))
            before = llm.engine.cached_tokens
            turn[chunk].append(first_token(llm, chat))
            reused[chunk] = llm.engine.cached_tokens - before
    base = chunks[0]
    tokens = len(models[base].encode(f"Round 0. Summarise: {FACTS}", raw=False))
    print(f"prompt of {tokens} tokens, medians of {rounds} rounds, ms to the first token")
    print(f"| chunk | unseen prompt | / {base} | next chat turn | / {base} | from the cache |")
    print("| --- | --- | --- | --- | --- | --- |")
    for chunk in chunks:
        u, t = statistics.median(unseen[chunk]), statistics.median(turn[chunk])
        u0, t0 = statistics.median(unseen[base]), statistics.median(turn[base])
        print(
            f"| {chunk} | {u * 1000:.0f} | {u / u0:.2f} | {t * 1000:.0f} | {t / t0:.2f} "
            f"| {reused[chunk]} |"
        )
    for llm in models.values():
        llm.close()


if __name__ == "__main__":
    main()
