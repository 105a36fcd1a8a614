"""Load benchmark: N concurrent jobs against a queen, in vLLM's benchmark definitions.

For each job, over the real SSE stream:
- TTFT: submission (POST /jobs) to the first token event;
- ITL: the gaps between consecutive token events;
- TPOT: (E2E - TTFT) / (tokens - 1);
- E2E: submission to the end event.
Reported as p50/p90/p99 over all jobs (ITL over all gaps), plus output tokens/s of the whole
run, as a table and as JSON. Jobs are sent at a fixed concurrency (each client submits its
next job when its last one ends), or at a fixed request rate (Poisson arrivals). When it
starts its own queen, it also samples the worker's resident memory (idle, and the peak at
each concurrency level).

    python benchmarks/bench.py --concurrency 1 8 64 --jobs 16 16 64 --max-tokens 64 [--rounds 3]
        [--rate R]
        [--prompt-words N] [--queen-url URL (default: start a queen)] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
from typing import Any

import httpx
from daemons import start_queen

PROMPT = "Write a long story about a bee who builds a hive in an old oak tree."
WORDS = [
    "the",
    "bees",
    "of",
    "the",
    "old",
    "oak",
    "tree",
    "gather",
    "nectar",
    "from",
    "every",
    "flower",
    "in",
    "the",
    "meadow",
]


def long_prompt(words: int) -> str:
    """A prompt of about ``words`` words (about as many tokens), for chosen prompt lengths."""
    text = " ".join(itertools.islice(itertools.cycle(WORDS), words))
    return f"Continue this story: {text}"


class MemorySampler:
    """Resident memory of one process (Linux /proc), sampled every 50 ms while active."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> MemorySampler:
        self.peak = self.rss()
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(0.05):
                self.peak = max(self.peak, self.rss())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def run_job(base: str, max_tokens: int, seed: int) -> dict[str, Any]:
    body = {
        "model": "smollm2-135m",
        "prompt": PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "seed": seed,
    }
    start = time.perf_counter()
    job = httpx.post(f"{base}/jobs", json=body, timeout=60).json()
    times: list[float] = []
    event = ""
    with httpx.stream("GET", f"{base}{job['sse_url']}", timeout=httpx.Timeout(10, read=600)) as r:
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "token":
                    times.append(time.perf_counter())
            elif line == "data: [DONE]":
                break
    end = time.perf_counter()
    n = len(times)
    ttft = times[0] - start if times else float("nan")
    return {
        "ttft": ttft,
        "e2e": end - start,
        "tpot": (end - start - ttft) / (n - 1) if n > 1 else float("nan"),
        "itl": [b - a for a, b in itertools.pairwise(times)],
        "tokens": n,
    }


def load(
    base: str, concurrency: int, jobs: int, max_tokens: int, rate: float | None, seed: int
) -> tuple[list[dict[str, Any]], float]:
    """Run ``jobs`` jobs; their per-job figures and the run's duration."""
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    rng = random.Random(seed)
    counter = iter(range(jobs))

    def client() -> None:
        for i in counter:
            result = run_job(base, max_tokens, seed + i)
            with lock:
                results.append(result)

    started = time.perf_counter()
    if rate is None:
        threads = [threading.Thread(target=client) for _ in range(concurrency)]
        for t in threads:
            t.start()
    else:  # open loop: Poisson arrivals at `rate` jobs/s
        threads = []
        for i in range(jobs):
            t = threading.Thread(
                target=lambda i=i: results.append(run_job(base, max_tokens, seed + i))
            )
            t.start()
            threads.append(t)
            time.sleep(rng.expovariate(rate))
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def _pct(values: list[float], q: float) -> float:
    values = sorted(v for v in values if v == v)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def summarise(
    rounds: list[tuple[list[dict[str, Any]], float]], concurrency: int, rate: float | None
) -> dict[str, Any]:
    """Percentiles over the jobs of every round; output tokens/s is the median round's."""
    results = [r for jobs, _ in rounds for r in jobs]
    rates = [sum(r["tokens"] for r in jobs) / duration for jobs, duration in rounds]
    metrics = {
        "ttft": [r["ttft"] for r in results],
        "tpot": [r["tpot"] for r in results],
        "itl": [x for r in results for x in r["itl"]],
        "e2e": [r["e2e"] for r in results],
    }
    return {
        "concurrency": concurrency,
        "rate": rate,
        "jobs": len(results),
        "rounds": len(rounds),
        "output_tokens": sum(r["tokens"] for r in results),
        "output_tokens_per_s": statistics.median(rates),
        "output_tokens_per_s_rounds": rates,
        **{
            f"{name}_ms": {f"p{q}": 1000 * _pct(v, q) for q in (50, 90, 99)}
            for name, v in metrics.items()
        },
        "mean_tpot_ms": 1000 * statistics.fmean(v for v in metrics["tpot"] if v == v),
    }


def _queen(models_dir: str, home: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "RBEE_HOME": home, "HOME": home, "RBEE_MODELS_DIR": models_dir}
    queen, base = start_queen(env, "--max-queue", "1024")
    run_job(base, 2, 0)  # start the hive and the worker, load the model
    return queen, base


def _worker_pid(base: str) -> int | None:
    workers = httpx.get(f"{base}/workers", timeout=10).json()["workers"]
    return int(workers[0]["pid"]) if len(workers) == 1 else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument(
        "--jobs",
        type=int,
        nargs="+",
        default=[16],
        help="jobs per concurrency level (one number for all, or one per level)",
    )
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument(
        "--prompt-words", type=int, help="a prompt of about this many words (default: a short one)"
    )
    p.add_argument("--rate", type=float, help="open loop: jobs per second instead")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every level this many times, the levels taking turns (default 1)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--queen-url", help="an already running queen (default: start one)")
    p.add_argument(
        "--models-dir", default=os.environ.get("RBEE_MODELS_DIR", "/tmp/rbee-bench-models")
    )
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    global PROMPT
    if args.prompt_words:
        PROMPT = long_prompt(args.prompt_words)
    with tempfile.TemporaryDirectory(prefix="rbee-bench-") as home:
        queen = None
        base = args.queen_url
        if base is None:
            queen, base = _queen(args.models_dir, home)
        try:
            pid = _worker_pid(base) if queen is not None else None
            memory = MemorySampler(pid) if pid else None
            idle = memory.rss() if memory else None
            jobs = args.jobs * len(args.concurrency) if len(args.jobs) == 1 else args.jobs
            levels = list(zip(args.concurrency, jobs, strict=True))
            rounds: dict[int, list[tuple[list[dict[str, Any]], float]]] = {}
            peaks: dict[int, float] = {}
            for i in range(args.rounds):
                for c, n in levels:
                    with memory or contextlib.nullcontext():
                        rounds.setdefault(c, []).append(
                            load(base, c, n, args.max_tokens, args.rate, args.seed)
                        )
                    # The first round only: freed memory stays with the process after that.
                    if memory and i == 0:
                        peaks[c] = memory.peak / 2**20
            runs = []
            for c, _ in levels:
                run = summarise(rounds[c], c, args.rate)
                run["worker_rss_idle_mb"] = idle / 2**20 if idle else None
                run["worker_rss_peak_mb"] = peaks.get(c)
                runs.append(run)
        finally:
            if queen is not None:
                queen.terminate()
                queen.wait(60)
    print(
        "| concurrency | jobs | output tok/s | TTFT p50/p90/p99 ms | TPOT p50/p90/p99 ms "
        "| ITL p50/p90/p99 ms | E2E p50/p90/p99 ms | worker RSS peak MiB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        cells = [
            " / ".join(f"{r[f'{m}_ms'][f'p{q}']:.0f}" for q in (50, 90, 99))
            for m in ("ttft", "tpot", "itl", "e2e")
        ]
        label = f"rate {r['rate']}/s" if r["rate"] else str(r["concurrency"])
        peak = f"{r['worker_rss_peak_mb']:.0f}" if r["worker_rss_peak_mb"] else "-"
        print(
            f"| {label} | {r['jobs']} | {r['output_tokens_per_s']:.1f} | "
            + " | ".join(cells)
            + f" | {peak} |"
        )
    if runs and runs[0]["worker_rss_idle_mb"]:
        print(f"\nworker RSS at idle (model loaded): {runs[0]['worker_rss_idle_mb']:.0f} MiB")
    if len(runs) > 1:
        base_rate = runs[0]["output_tokens_per_s"]
        for r in runs[1:]:
            print(
                f"\naggregate tok/s at concurrency {r['concurrency']} vs "
                f"{runs[0]['concurrency']}: {r['output_tokens_per_s'] / base_rate:.2f}x"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=2)


if __name__ == "__main__":
    main()
