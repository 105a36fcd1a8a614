"""fp32 against bf16 on the default model, loaded twice through rbee's own ``TorchBackend``.

The model is ``smollm2-135m`` (the GGUF converted once to safetensors in the model cache),
loaded with ``RBEE_TORCH_DTYPE=fp32`` and again with ``RBEE_TORCH_DTYPE=bf16``; both stay
loaded, and every measurement runs the two side by side, their order alternating per run.

1. Speed, greedy, chat template, through each model's ``BatchEngine``:
   - decode tokens/s at batch 1: ``--max-tokens`` (128) new tokens of "Write a long story
     about a bee.", counted from the first token to the last (prefill excluded);
   - decode tokens/s at each other ``--batch`` size (8 different story prompts), counted
     from the moment every row has its first token to the last token of any row;
   - prefill: time to the first token of a ~580-token prompt.
   Medians of ``--runs``; "bf16 speed" is the ratio of the medians as speeds (tokens/s
   bf16/fp32, prefill time fp32/bf16): above 1, bf16 is faster.
2. Greedy parity: ~10 varied prompts, chat template, ``--parity-tokens`` (48) tokens each,
   bf16 against fp32: identical or not, else the first differing token position, both
   continuations from there, and fp32's logit margin between the two tokens at that
   position (a small margin: a near tie that bf16's rounding tipped over).
3. Batched = alone, in each dtype: the jobs of features/batching.feature (two greedy, two
   sampled with a seed) through ``TorchModel.generate``, each alone, then all at once from
   as many threads: does every job answer the same text in the batch as alone?

Prints markdown tables on stdout, progress on stderr.

    RBEE_HOME=/tmp/rbee-bf16 python benchmarks/bench_torch_dtype.py [--runs 5]
        [--max-tokens 128] [--parity-tokens 48] [--batch 1 8] [--threads 2] [--device cpu]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import threading
import time
from typing import Any

import torch
import transformers

from rbee_core.backends import GenerationParams
from rbee_core.plugins import create_plugin_manager, model_catalog
from rbee_torch.backend import TorchBackend
from rbee_torch.dtype import DTYPE_ENV, cpu_bf16_features
from rbee_torch.generation import TorchModel
from rbee_torch.sampling import Sampler

MODEL = "smollm2-135m"
DTYPES = ("fp32", "bf16")
STORY = "Write a long story about a bee."
STORIES = [
    STORY,
    "Write a long story about a lighthouse keeper and a storm.",
    "Tell a long tale of a fox who learns to read.",
    "Write a long story about two friends crossing a desert.",
    "Describe, at length, a day in a busy harbour town.",
    "Write a long story about a robot that tends a garden.",
    "Tell a long story about a girl who finds a map in the attic.",
    "Write a long story about the last train of the night.",
]
PARITY_PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain photosynthesis in two sentences.",
    "What is 17 times 23?",
    "Translate 'Good morning, how are you?' into Spanish.",
    "Write a Python function that reverses a string.",
    "List three benefits of regular exercise.",
    "Who wrote Pride and Prejudice?",
    "Give me a short recipe for pancakes.",
    "Summarise the plot of Romeo and Juliet in one paragraph.",
    STORY,
]
# features/batching.feature's jobs: prompt, temperature, seed, max_tokens.
BATCH_JOBS = [
    ("What is the capital of France?", 0.0, None, 24),
    ("Name three colours.", 0.0, None, 40),
    ("Write a haiku about bees.", 0.8, 7, 40),
    ("Tell me a joke about computers.", 0.8, 42, 32),
]
LONG_PROMPT = "Summarise the following notes in three sentences.\n\n" + " ".join(
    f"Note {i}: the bees of hive {i % 7} visited the clover field at dawn, returned "
    f"with pollen, and the keeper counted {12 + i} frames of capped honey."
    for i in range(16)
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load(device: str) -> dict[str, TorchModel]:
    def narrate(action: str, message: str, progress: object = None) -> None:
        say(f"  [{action}] {message}")

    local = model_catalog(create_plugin_manager("worker")).provision(MODEL, narrate)
    models: dict[str, TorchModel] = {}
    saved = os.environ.get(DTYPE_ENV)
    try:
        for name in DTYPES:
            os.environ[DTYPE_ENV] = name
            models[name] = TorchBackend().load(local, device, narrate)
    finally:
        if saved is None:
            os.environ.pop(DTYPE_ENV, None)
        else:
            os.environ[DTYPE_ENV] = saved
    return models


def greedy_ids(tm: TorchModel, prompt_ids: list[int], max_tokens: int) -> list[int]:
    sampler = Sampler(GenerationParams(temperature=0), tm.device)
    seq = tm.engine.submit(prompt_ids, max_tokens, sampler, lambda: False)
    return [t for t in seq if isinstance(t, int)]


def timed_batch(tm: TorchModel, prompts: list[list[int]], max_tokens: int) -> dict[str, float]:
    """Submit every prompt at once; each row's token arrival times, read in its own thread."""
    times: list[list[float]] = [[] for _ in prompts]

    def read(row: int, seq: Any) -> None:
        for token in seq:
            if isinstance(token, int):
                times[row].append(time.perf_counter())

    sampler_params = GenerationParams(temperature=0)
    started = time.perf_counter()
    seqs = [
        tm.engine.submit(ids, max_tokens, Sampler(sampler_params, tm.device), lambda: False)
        for ids in prompts
    ]
    threads = [threading.Thread(target=read, args=(i, s)) for i, s in enumerate(seqs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    window = max(row[0] for row in times)  # every row is decoding from here on
    end = max(row[-1] for row in times)
    decoded = sum(1 for row in times for t in row if t > window)
    return {
        "tokens": sum(len(row) for row in times),
        "decode_tok_s": decoded / (end - window) if end > window else float("nan"),
        "ttft_s": min(row[0] for row in times) - started,
    }


def speed(models: dict[str, TorchModel], args: argparse.Namespace) -> dict[str, Any]:
    first = next(iter(models.values()))
    long_ids = first.encode(LONG_PROMPT, raw=False)
    say(f"prefill prompt: {len(long_ids)} tokens")
    jobs: dict[str, Any] = {}
    for b in args.batch:
        prompts = [first.encode(STORIES[i % len(STORIES)], raw=False) for i in range(b)]
        jobs[f"decode tok/s, batch {b}"] = (prompts, args.max_tokens, "decode_tok_s")
    jobs["prefill ms, one prompt"] = ([long_ids], 1, "ttft_s")
    for name, tm in models.items():  # warm-up: first calls pay for allocations, oneDNN setup
        say(f"warm-up {name}")
        for prompts, _, _ in jobs.values():
            timed_batch(tm, prompts, 8)
    results: dict[str, dict[str, list[float]]] = {job: {d: [] for d in DTYPES} for job in jobs}
    for run in range(args.runs):
        order = DTYPES if run % 2 == 0 else DTYPES[::-1]
        for job, (prompts, n, key) in jobs.items():
            for name in order:
                value = timed_batch(models[name], prompts, n)[key]
                if key == "ttft_s":
                    value *= 1000
                results[job][name].append(value)
                say(f"run {run + 1}: {job}: {name} {value:.1f}")
    return results


def parity(models: dict[str, TorchModel], n_tokens: int) -> list[dict[str, Any]]:
    fp32, bf16 = models["fp32"], models["bf16"]
    rows = []
    for prompt in PARITY_PROMPTS:
        ids = fp32.encode(prompt, raw=False)
        a = greedy_ids(fp32, ids, n_tokens)
        b = greedy_ids(bf16, ids, n_tokens)
        row: dict[str, Any] = {"prompt": prompt, "identical": a == b, "fp32": a, "bf16": b}
        if a != b:
            pos = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
            pos = min(len(a), len(b)) if pos is None else pos
            row["position"] = pos
            row["common"] = fp32.tokenizer.decode(a[:pos])
            row["fp32_text"] = fp32.tokenizer.decode(a[pos:]) if pos < len(a) else "<end>"
            row["bf16_text"] = bf16.tokenizer.decode(b[pos:]) if pos < len(b) else "<end>"
            if pos < len(a) and pos < len(b):
                with torch.inference_mode():
                    x = torch.tensor([ids + a[:pos]], device=fp32.model.device)
                    logits = fp32.model(input_ids=x).logits[0, -1].float()
                row["fp32_margin"] = float(logits[a[pos]] - logits[b[pos]])
        rows.append(row)
        verdict = "identical" if a == b else f"differs at token {row['position']}"
        say(f"parity: {prompt!r}: {verdict}")
    return rows


def batch_parity(models: dict[str, TorchModel]) -> dict[str, list[bool]]:
    """Per dtype, per job of ``BATCH_JOBS``: the same text run together as alone?"""

    def answer(tm: TorchModel, job: tuple[str, float, int | None, int]) -> str:
        prompt, temperature, seed, max_tokens = job
        params = GenerationParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
        return "".join(c.text for c in tm.generate(prompt, params, lambda: False))

    same: dict[str, list[bool]] = {}
    for name, tm in models.items():
        alone = [answer(tm, job) for job in BATCH_JOBS]
        together = [""] * len(BATCH_JOBS)

        def run(i: int, tm: TorchModel = tm, out: list[str] = together) -> None:
            out[i] = answer(tm, BATCH_JOBS[i])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(BATCH_JOBS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        same[name] = [a == b for a, b in zip(alone, together, strict=True)]
        say(f"batched = alone, {name}: {same[name]}")
    return same


def cell(text: str, limit: int = 70) -> str:
    text = text.replace("\n", "\u23ce").replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--parity-tokens", type=int, default=48)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    models = load(args.device)
    features = ", ".join(cpu_bf16_features()) or "none"
    meta = {
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": args.device,
        "cpu bf16 features": features,
        "torch threads": torch.get_num_threads(),
        "os cpus": os.cpu_count(),
        "weights MiB fp32 / bf16": " / ".join(
            f"{sum(p.numel() * p.element_size() for p in tm.model.parameters()) / 2**20:.0f}"
            for tm in models.values()
        ),
    }
    say(f"{meta}")
    speeds = speed(models, args)
    rows = parity(models, args.parity_tokens)
    batched = batch_parity(models)
    for tm in models.values():
        tm.close()
    meta["load average (1 min) at start / end"] = f"{load_start:.2f} / {os.getloadavg()[0]:.2f}"

    print(", ".join(f"{k}: {v}" for k, v in meta.items()))
    print()
    print(f"| measurement | fp32 (median of {args.runs}) | bf16 | bf16 speed | runs fp32 / bf16 |")
    print("| --- | --- | --- | --- | --- |")
    for job, by in speeds.items():
        m32, m16 = statistics.median(by["fp32"]), statistics.median(by["bf16"])
        ratio = m32 / m16 if job.startswith("prefill") else m16 / m32
        runs = " / ".join(", ".join(f"{v:.1f}" for v in by[d]) for d in DTYPES)
        print(f"| {job} | {m32:.1f} | {m16:.1f} | {ratio:.2f}x | {runs} |")
    print()
    same = sum(r["identical"] for r in rows)
    print(f"Greedy, {args.parity_tokens} tokens: bf16 identical to fp32 on {same} of {len(rows)}.")
    print()
    print("| prompt | identical | first diff (token) | fp32 margin | fp32 from there | bf16 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["identical"]:
            print(f"| {cell(r['prompt'], 40)} | yes | - | - | - | - |")
            continue
        margin = f"{r['fp32_margin']:.3f}" if "fp32_margin" in r else "-"
        print(
            f"| {cell(r['prompt'], 40)} | no | {r['position']} | {margin} | "
            f"{cell(r['fp32_text'])} | {cell(r['bf16_text'])} |"
        )
    print()
    print("| dtype | batched = alone (features/batching.feature's 4 jobs) | jobs that differ |")
    print("| --- | --- | --- |")
    for name, flags in batched.items():
        differ = ", ".join(
            f"{job[0]} (t={job[1]})" for job, ok in zip(BATCH_JOBS, flags, strict=True) if not ok
        )
        print(f"| {name} | {sum(flags)} of {len(flags)} | {differ or '-'} |")
    if args.json:
        with open(args.json, "w") as f:
            result = {"meta": meta, "speed": speeds, "parity": rows, "batched_alone": batched}
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
