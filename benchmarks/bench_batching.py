"""Batching in one process: rbee's BatchEngine against transformers' own paths, side by side.

On the default model (or ``--random-model``: the same architecture with random weights,
which decodes at the same speed), with N prompts run together, each to ``--max-tokens``:

- ``rbee``: ``TorchModel.generate`` from N threads, all decoded by one ``BatchEngine``;
- ``hf-cb``: transformers' continuous batching, ``model.generate_batch(N prompts)``;
- ``hf-generate``: transformers ``model.generate`` on one prompt (N = 1 only): the
  single-stream reference.

Reported per variant and N: output tokens/s of the whole run (median of ``--runs``, the
order rotating every run), and whether greedy outputs in the batch equal the same prompt
decoded alone. Also the memory-bandwidth bound of a decode step (``--bandwidth`` GB/s):
weights read once per step, plus every sequence's KV cache.

    python benchmarks/bench_batching.py [--concurrency 1 8] [--max-tokens 64] [--runs 3]
        [--device cpu|cuda] [--random-model] [--bandwidth GBPS] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from functools import partial
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from rbee_core.backends import GenerationParams
from rbee_core.plugins import create_plugin_manager, model_catalog
from rbee_torch.backend import torch_model
from rbee_torch.convert import converted_path, ensure_safetensors
from rbee_torch.generation import TorchModel
from rbee_torch.kv_budget import bytes_per_token

PROMPTS = [
    "Write a long story about a bee who builds a hive in an old oak tree.",
    "Explain how a refrigerator works.",
    "Describe a walk through a forest in autumn.",
    "What should I pack for a week of hiking in the mountains?",
    "Tell me about the history of the bicycle.",
    "Write a letter to a friend about a new job.",
    "How do bees make honey?",
    "Describe your ideal city.",
]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load(device: str, random_weights: bool) -> TorchModel:
    def narrate(action: str, message: str, progress: object = None) -> None:
        say(f"  {message}")

    models = os.environ.setdefault(
        "RBEE_MODELS_DIR", os.path.join(tempfile.gettempdir(), "rbee-bench-models")
    )
    say(f"model cache: {models}")
    local = model_catalog(create_plugin_manager("worker")).provision("smollm2-135m", narrate)
    ensure_safetensors(local, narrate)
    folder = converted_path(local)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if random_weights:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(folder)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    return torch_model(model.to(device).eval(), tokenizer, device)


def run_rbee(tm: TorchModel, prompts: list[str], params: list[GenerationParams]) -> dict[str, Any]:
    texts: list[str] = [""] * len(prompts)
    counts = [0] * len(prompts)

    def one(i: int) -> None:
        for chunk in tm.generate(prompts[i], params[i], lambda: False):
            texts[i] += chunk.text
            if chunk.finish_reason:
                counts[i] = chunk.completion_tokens

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "tokens": sum(counts), "texts": texts}


def run_hf_cb(tm: TorchModel, ids: list[list[int]], config: GenerationConfig) -> dict[str, Any]:
    started = time.perf_counter()
    outputs = tm.model.generate_batch(inputs=ids, generation_config=config, progress_bar=False)
    elapsed = time.perf_counter() - started
    ordered = sorted(outputs.values(), key=lambda o: int(str(o.request_id).rsplit("_", 1)[-1]))
    texts = [tm.tokenizer.decode(o.generated_tokens, skip_special_tokens=True) for o in ordered]
    return {
        "seconds": elapsed,
        "tokens": sum(len(o.generated_tokens) for o in ordered),
        "texts": texts,
    }


def run_hf_generate(tm: TorchModel, ids: list[int], config: GenerationConfig) -> dict[str, Any]:
    inputs = torch.tensor([ids], device=tm.model.device)
    started = time.perf_counter()
    out = tm.model.generate(
        inputs, attention_mask=torch.ones_like(inputs), generation_config=config
    )
    elapsed = time.perf_counter() - started
    new = out[0, inputs.shape[1] :].tolist()
    new = [t for t in new if t != tm.tokenizer.pad_token_id]
    return {"seconds": elapsed, "tokens": len(new), "texts": [tm.tokenizer.decode(new)]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--random-model", action="store_true", help="random weights, same shape")
    p.add_argument("--bandwidth", type=float, help="memory bandwidth in GB/s, for the bound")
    p.add_argument("--skip-cb", action="store_true", help="leave out transformers' batching")
    p.add_argument("--json")
    args = p.parse_args()
    os.environ.setdefault("RBEE_MAX_BATCH", str(max(args.concurrency)))
    tm = load(args.device, args.random_model)
    n_tokens = args.max_tokens
    # Both stop at the model's end of sequence, as rbee does.
    stop = {"eos_token_id": sorted(tm.eos_ids), "pad_token_id": tm.tokenizer.pad_token_id}
    sampled = GenerationConfig(
        max_new_tokens=n_tokens, do_sample=True, temperature=0.7, top_p=1.0, top_k=0, **stop
    )
    greedy = GenerationConfig(max_new_tokens=n_tokens, do_sample=False, **stop)
    say(f"torch threads: {torch.get_num_threads()}; load average: {os.getloadavg()[0]:.2f}")
    results: dict[str, dict[int, list[dict[str, Any]]]] = {}
    parity: dict[str, dict[int, bool]] = {}
    for n in args.concurrency:
        prompts = list(itertools.islice(itertools.cycle(PROMPTS), n))
        ids = [tm.encode(pr, raw=False) for pr in prompts]
        params = [GenerationParams(max_tokens=n_tokens, temperature=0.7, seed=i) for i in range(n)]
        steps: dict[str, Any] = {"rbee": partial(run_rbee, tm, prompts, params)}
        if not args.skip_cb:
            steps["hf-cb"] = partial(run_hf_cb, tm, ids, sampled)
        if n == 1:
            steps["hf-generate"] = partial(run_hf_generate, tm, ids[0], sampled)
        for name, step in steps.items():  # warm-up
            say(f"N={n}: warm-up {name}")
            step()
        for run in range(args.runs):
            names = list(steps)
            names = names[run % len(names) :] + names[: run % len(names)]
            for name in names:
                result = steps[name]()
                results.setdefault(name, {}).setdefault(n, []).append(result)
                rate = result["tokens"] / result["seconds"]
                say(f"N={n} run {run + 1}: {name} {rate:.1f} tok/s")
        # Greedy parity: each prompt in the batch against the same prompt alone.
        greedy_params = [GenerationParams(max_tokens=n_tokens, temperature=0)] * n
        alone = [run_rbee(tm, [pr], greedy_params[:1])["texts"][0] for pr in prompts]
        parity.setdefault("rbee", {})[n] = run_rbee(tm, prompts, greedy_params)["texts"] == alone
        if not args.skip_cb:
            cb_alone = [run_hf_cb(tm, [i], greedy)["texts"][0] for i in ids]
            parity.setdefault("hf-cb", {})[n] = run_hf_cb(tm, ids, greedy)["texts"] == cb_alone
    tm.close()

    def rate(name: str, n: int) -> float:
        return statistics.median(r["tokens"] / r["seconds"] for r in results[name][n])

    single = rate("rbee", 1) if 1 in args.concurrency else None
    print("| variant | concurrency | output tok/s (median) | vs rbee at 1 | greedy = alone |")
    print("| --- | --- | --- | --- | --- |")
    for name, by_n in results.items():
        for n in by_n:
            ratio = f"{rate(name, n) / single:.2f}x" if single else "-"
            same = parity.get(name, {}).get(n)
            print(
                f"| {name} | {n} | {rate(name, n):.1f} | {ratio} | "
                f"{'-' if same is None else 'yes' if same else 'NO'} |"
            )
    if args.bandwidth:
        weights = sum(p.numel() * p.element_size() for p in tm.model.parameters())
        per_token = bytes_per_token(tm.model.config, tm.model.dtype.itemsize)
        print("\n| concurrency | bandwidth bound tok/s | rbee | of the bound |")
        print("| --- | --- | --- | --- |")
        for n in args.concurrency:
            context = len(tm.encode(PROMPTS[0], raw=False)) + n_tokens // 2
            step_bytes = weights + n * context * per_token
            bound = n * args.bandwidth * 1e9 / step_bytes
            print(f"| {n} | {bound:.0f} | {rate('rbee', n):.1f} | {rate('rbee', n) / bound:.0%} |")
    if args.json:
        with open(args.json, "w") as f:
            summary = {
                name: {str(n): {"tok_s": rate(name, n)} for n in by_n}
                for name, by_n in results.items()
            }
            json.dump({"rates": summary, "greedy_parity": parity}, f, indent=2)


if __name__ == "__main__":
    main()
