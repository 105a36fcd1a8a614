"""rbee's llama.cpp worker against llama-cpp-python alone on every common quantisation:
decode and prompt processing, side by side in one run, and answers the same in a batch.

Each quantisation is the default model (SmolLM2-135M-Instruct Q4_1) requantised with
llama.cpp's own ``llama_model_quantize`` (``rbee_llamacpp.library.quantize``), as a user's
own files would be. For each, three engines, every process pinned to the same ``--threads``
CPUs:

- ``llama-cpp-python``: ``Llama(path, n_threads=2, n_ctx=2048)`` in a child process
  (bench_engines.LlamaCppPython), ``create_chat_completion(stream=True)``;
- ``rbee``: jobs through a queen of its own (``--model file:PATH``), the defaults;
- ``rbee no repack``: the same with ``RBEE_REPACK=0`` (the file's own weight layout);
- ``rbee chunk 512``: the defaults with ``RBEE_PREFILL_CHUNK=512``.

Per round, in an order that rotates: a greedy job of ``--tokens`` tokens (decode tokens/s
after the first token), then a job of one token on a prompt of about ``--prompt-tokens``
tokens (711 for 512) that no engine has seen (prompt processing: its prompt tokens / time
to the first token; the chat template's system prompt is cached by all three). Medians
(min-max) over ``--rounds``. Then, on rbee: 8 seeded jobs (temperature 0.8) alone, one
after another, and the same 8 at once; their texts must be the same.

    python benchmarks/bench_quants.py [--rounds 3] [--tokens 128] [--prompt-tokens 512]
        [--quants Q4_0,Q4_K_M,Q5_K_M,Q8_0,Q4_1] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from bench_engines import PROMPT, LlamaCppPython, model_path, rss_mib, say, stop
from bench_engines import rbee_job as engine_job
from daemons import start_queen

from rbee_llamacpp.library import QUANTIZATIONS, quantize

QUANTS = ["Q4_0", "Q4_K_M", "Q5_K_M", "Q8_0", "Q4_1"]
ENGINES = ["llama-cpp-python", "rbee", "rbee no repack", "rbee chunk 512"]
Result = dict[str, Any]


def long_prompt(words: int, tag: str) -> str:
    """About ``words`` * 1.3 tokens of notes, opening with ``tag`` so no cache holds it."""
    notes = " ".join(f"Bee {i} visited flower {i * 7 % 13} at hour {i % 24}." for i in range(999))
    return f"{tag}. Read these notes, then say which flower was visited most. " + " ".join(
        notes.split()[:words]
    )


def rbee_job(url: str, model: str, tokens: int, prompt: str, **extra: Any) -> Result:
    """One llama.cpp job of ``model`` through the queen (bench_engines.rbee_job)."""
    return engine_job(url, tokens, "llamacpp", prompt=prompt, model=model, **extra)


def start_rbee(stack: contextlib.ExitStack, model: str, **env_: str) -> tuple[str, int]:
    """A queen of its own, its worker loaded by a warm-up job: its URL, the worker's pid."""
    home = stack.enter_context(tempfile.TemporaryDirectory(prefix="rbee-quants-"))
    env = {**os.environ, "RBEE_HOME": home, "HOME": home, "RBEE_MODELS_DIR": f"{home}/models"}
    env |= env_
    queen, url = start_queen(env, new_session=True)
    stack.callback(stop, queen)
    rbee_job(url, model, 8, PROMPT)
    workers = httpx.get(f"{url}/workers", timeout=10).json()["workers"]
    return url, int(next(w["pid"] for w in workers if w.get("pid")))


def batch_check(url: str, model: str) -> bool:
    """8 seeded jobs alone, then at once: the same texts."""

    def job(seed: int) -> str:
        return str(rbee_job(url, model, 32, PROMPT, temperature=0.8, seed=seed)["text"])

    alone = [job(seed) for seed in range(8)]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(job, range(8)))
    return together == alone


def spread(values: list[float], digits: int = 1) -> str:
    v = sorted(x for x in values if x == x)
    if not v:
        return "-"
    mid = f"{statistics.median(v):.{digits}f}"
    return mid if len(v) == 1 else f"{mid} ({v[0]:.{digits}f}-{v[-1]:.{digits}f})"


def bench_quant(args: argparse.Namespace, path: Path) -> Result:
    model = f"file:{path}"
    with contextlib.ExitStack() as stack:
        say(f"{path.name}: loading llama-cpp-python, and three queens")
        alone = LlamaCppPython(path, args.threads)
        stack.callback(alone.close)
        alone.run(8)
        rbee_url, rbee_pid = start_rbee(stack, model)
        plain_url, _ = start_rbee(stack, model, RBEE_REPACK="0")
        chunk_url, _ = start_rbee(stack, model, RBEE_PREFILL_CHUNK="512")
        idle = rss_mib(rbee_pid)
        # engine -> a job of (tokens, prompt) on it
        run: dict[str, Callable[[int, str], Result]] = {"llama-cpp-python": alone.run}
        for name, url in (
            ("rbee", rbee_url),
            ("rbee no repack", plain_url),
            ("rbee chunk 512", chunk_url),
        ):
            run[name] = partial(rbee_job, url, model)
        decode = {e: partial(job, args.tokens, PROMPT) for e, job in run.items()}
        prefill = {e: partial(job, 1) for e, job in run.items()}
        words = int(args.prompt_tokens / 1.3)
        prompt_tokens = rbee_job(rbee_url, model, 1, long_prompt(words, "warm"))["prompt_tokens"]
        runs: dict[str, dict[str, list[float]]] = {e: {"decode": [], "pp": []} for e in ENGINES}
        texts: dict[str, str] = {}
        for round_ in range(args.rounds):
            turn = round_ % len(ENGINES)
            for engine in ENGINES[turn:] + ENGINES[:turn]:
                result = decode[engine]()
                texts.setdefault(engine, result["text"])
                runs[engine]["decode"].append(result["decode"])
                first = prefill[engine](long_prompt(words, f"Round {round_} for {engine}"))
                runs[engine]["pp"].append(prompt_tokens / first["ttft"])
                say(
                    f"{path.name} round {round_ + 1}: {engine}: {result['decode']:.1f} tok/s "
                    f"decode, {runs[engine]['pp'][-1]:.0f} tok/s prompt"
                )
        same_in_batch = batch_check(rbee_url, model)
        after = rss_mib(rbee_pid)
    return {
        "runs": runs,
        "prompt_tokens": prompt_tokens,
        "rss_idle": idle,
        "rss_after": after,
        "same_in_batch": same_in_batch,
        "same_text_as_no_repack": texts["rbee"] == texts["rbee no repack"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tokens", type=int, default=128, help="new tokens of a decode job")
    p.add_argument(
        "--prompt-tokens",
        type=int,
        default=512,
        help="the prompt's length, as words x 1.3 (its numbers tokenise denser: 512 gives 711)",
    )
    p.add_argument("--quants", default=",".join(QUANTS), help="comma-separated")
    p.add_argument("--threads", type=int, default=2, help="CPUs every engine is pinned to")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    quants = [q.strip() for q in args.quants.split(",") if q.strip()]
    if unknown := [q for q in quants if q not in QUANTIZATIONS]:
        sys.exit(f"unknown quantisation {unknown}: one of {', '.join(QUANTIZATIONS)}")
    cpus = sorted(os.sched_getaffinity(0))[: args.threads]
    os.sched_setaffinity(0, cpus)  # inherited by every process started below
    source = model_path()
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="rbee-quants-files-") as files:
        for quant in quants:
            path = Path(files, f"SmolLM2-135M-Instruct.{quant}.gguf")
            if quant == "Q4_1":
                path = source  # the default model itself
            else:
                quantize(source, path, quant, args.threads)
            results[quant] = bench_quant(args, path)
            results[quant]["size_mb"] = path.stat().st_size / 1e6
    report(args, results, cpus)


def report(args: argparse.Namespace, results: dict[str, Result], cpus: list[int]) -> None:
    print(
        f"{args.tokens} decode tokens, prompts of {args.prompt_tokens} tokens, {args.rounds} "
        f"rounds, {args.threads} threads (CPUs {cpus})\n"
    )
    print(
        "| file | llama-cpp-python decode | rbee decode | ratio | rbee no repack | "
        "llama-cpp-python prompt | rbee prompt | ratio | rbee no repack | rbee chunk 512 "
        "| ratio | rbee RSS idle MiB | same alone and in a batch of 8 |"
    )
    print("| --- " * 13 + "|")
    for quant, r in results.items():
        runs = r["runs"]
        med = {e: {k: statistics.median(v) for k, v in runs[e].items()} for e in ENGINES}
        cells = []
        for key in ("decode", "pp"):
            ratio = med["rbee"][key] / med["llama-cpp-python"][key]
            cells += [
                spread(runs["llama-cpp-python"][key], 0 if key == "pp" else 1),
                spread(runs["rbee"][key], 0 if key == "pp" else 1),
                f"{ratio:.2f}",
                spread(runs["rbee no repack"][key], 0 if key == "pp" else 1),
            ]
        chunked = med["rbee chunk 512"]["pp"] / med["llama-cpp-python"]["pp"]
        cells += [spread(runs["rbee chunk 512"]["pp"], 0), f"{chunked:.2f}"]
        print(
            f"| {quant} ({r['size_mb']:.0f} MB) | {' | '.join(cells)} | {r['rss_idle']:.0f} "
            f"| {'yes' if r['same_in_batch'] else 'NO'} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
