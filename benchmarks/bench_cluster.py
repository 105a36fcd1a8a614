"""One model, two machines: what a second hive buys, and what placing by cached prefix buys.

Hives here are "machines" on this box, each pinned to its own CPU core (``taskset -c``, which
its workers inherit) with ``RBEE_THREADS=1``; each setup gets its own queen, hives and state
dirs, and its workers are spawned up front (``POST /workers`` via ``rbee-keeper worker spawn``),
so no setup pays a worker's start inside what is timed.

(a) Throughput: 16 concurrent jobs (chat, sampled, a seed each, ``--tokens`` new tokens) on
    one hive (one core) against two hives (two cores): output tokens/s of the whole batch
    (every completion token / first request to last answer), median over ``--repeats``.
    Goal: two hives >= 1.8x one.
(b) Multi-turn: ``--conversations`` at once, ``--turns`` each, every turn the whole history
    (a long system message of its own, ~730 tokens, 1,000+ by the last turn; greedy,
    48 new tokens) over the two workers, with the queen's default (prefix-aware, bounded
    load) placement against least-busy placement (the benchmark-only plugin in
    ``benchmarks/rbee-bench-least-busy``, installed with ``pip --no-deps --target`` into a
    temp folder that only that queen's path holds). TTFT (request sent to the first token's
    text, streamed ``/v1/chat/completions``) p50 and p99 over the turns after the first, and
    the share of those turns that ran where their history was cached (``cached_tokens``, from
    each job's record, at least the previous turn's whole prompt). Goal: prefix-aware p50
    <= 0.5x. ``--chat-hives N`` runs the chats over N hives instead, pinned to the two
    cores in turn (more workers: least busy finds a conversation's cache less often).

    python benchmarks/bench_cluster.py [--repeats 2] [--conversations 8] [--turns 6]
        [--tokens 64] [--chat-hives 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from daemons import start_queen

from rbee_queen.launcher import local_command

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from steps.support.conversations import Turn, cached_history, run_conversations

MODEL = "smollm2-135m"
JOBS = 16
BIN = Path(sys.executable).parent
LEAST_BUSY = Path(__file__).resolve().parent / "rbee-bench-least-busy"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def least_busy_plugin(stack: contextlib.ExitStack) -> str:
    """The least-busy policy installed into a folder of its own: a path for one queen's
    ``PYTHONPATH``, so no other queen of this environment ever loads it."""
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="rbee-least-busy-"))
    source = Path(folder, "src")
    shutil.copytree(LEAST_BUSY, source)  # the build leaves its build/ and egg-info there
    target = Path(folder, "site")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", str(target), str(source)], check=True)
    return str(target)


@contextlib.contextmanager
def cluster(
    models: str, cores: list[int], plugin_path: str | None = None
) -> Iterator[tuple[str, list[str]]]:
    """A queen, a hive pinned to each of ``cores`` (h1, h2, ...) and a loaded worker of the
    model on each: the queen's URL and the hives' names."""
    with contextlib.ExitStack() as stack:
        home = stack.enter_context(tempfile.TemporaryDirectory(prefix="rbee-cluster-"))
        env = {**os.environ, "HOME": home, "RBEE_MODELS_DIR": models}
        env = {k: v for k, v in env.items() if k not in ("RBEE_API_KEY", "RBEE_THREADS")}
        queen_env = env | {"RBEE_HOME": str(Path(home, "queen"))}
        if plugin_path:
            queen_env["PYTHONPATH"] = os.pathsep.join(
                filter(None, (plugin_path, env.get("PYTHONPATH")))
            )
        # As many workers as hives, all spawned below: no replica starts mid-measurement.
        queen, url = start_queen(queen_env, "--max-replicas", str(len(cores)), new_session=True)
        stack.callback(_stop, queen)
        names = [f"h{i + 1}" for i in range(len(cores))]
        for name, core in zip(names, cores, strict=True):
            hive_env = env | {"RBEE_HOME": str(Path(home, name)), "RBEE_THREADS": "1"}
            log = stack.enter_context(Path(home, f"{name}.log").open("wb"))
            hive = subprocess.Popen(
                ["taskset", "-c", str(core), *local_command(url, name, 1.0)],
                env=hive_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            stack.callback(_stop, hive)
        _wait(lambda: _ready(url) >= set(names), 60, "the hives to be ready")
        for name in names:
            spawn = [str(BIN / "rbee-keeper"), "--queen-url", url, "worker", "spawn"]
            spawn += ["--hive", name, "--model", MODEL, "--keep-alive", "-1"]
            subprocess.run(spawn, env=env, check=True, capture_output=True, timeout=300)
        # The queen learns of a spawned worker from its hive's next heartbeat: until then it
        # would start a "replica" where one already runs.
        _wait(lambda: _serving(url) >= set(names), 60, "the queen to see every worker")
        yield url, names


def _serving(url: str) -> set[str]:
    """The hives the queen knows a worker of the model on."""
    workers = httpx.get(f"{url}/workers", timeout=10).json()["workers"]
    return {w["hive"] for w in workers if w["model"] == MODEL}


def _ready(url: str) -> set[str]:
    hives = httpx.get(f"{url}/hives", timeout=10).json()["hives"]
    return {h["name"] for h in hives if h["state"] == "ready"}


def _chat(client: httpx.Client, i: int, tokens: int) -> tuple[int, str]:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"Write a long story about bee number {i}."}],
        "max_tokens": tokens,
        "temperature": 0.8,
        "seed": i,
    }
    answer = client.post("/v1/chat/completions", json=body).raise_for_status().json()
    job = client.get("/jobs/job-" + answer["id"].removeprefix("chatcmpl-")).json()
    return int(answer["usage"]["completion_tokens"]), str(job["worker"])


def throughput(url: str, tokens: int) -> tuple[float, Counter[str]]:
    """Output tokens/s of JOBS concurrent jobs, and how many each worker ran."""
    with (
        httpx.Client(base_url=url, timeout=600) as client,
        ThreadPoolExecutor(JOBS) as pool,
    ):
        start = time.perf_counter()
        done = list(pool.map(lambda i: _chat(client, i, tokens), range(JOBS)))
        seconds = time.perf_counter() - start
    return sum(t for t, _ in done) / seconds, Counter(w for _, w in done)


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: with 40 turns, p99 is the slowest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def multi_turn(url: str, conversations: int, turns: int) -> dict[str, Any]:
    start = time.perf_counter()
    done = run_conversations(url, {}, MODEL, conversations, turns, max_tokens=48)
    seconds = time.perf_counter() - start
    later: list[Turn] = [t for c in done for t in c[1:]]
    ttft = [t.ttft for t in later]
    cached = [hit for c in done for hit in cached_history(c)]
    return {
        "ttft_p50": percentile(ttft, 50),
        "ttft_p99": percentile(ttft, 99),
        "first_turn_ttft_p50": statistics.median(c[0].ttft for c in done),
        "cached_share": sum(cached) / len(cached),
        "last_prompt_tokens": statistics.median(c[-1].prompt_tokens for c in done),
        "seconds": seconds,
        "turns_per_worker": dict(Counter(str(t.worker) for c in done for t in c)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=2, help="throughput runs per setup")
    p.add_argument("--tokens", type=int, default=64, help="new tokens per throughput job")
    p.add_argument("--conversations", type=int, default=8)
    p.add_argument("--turns", type=int, default=6)
    p.add_argument(
        "--models-dir", default=os.environ.get("RBEE_MODELS_DIR", "/tmp/rbee-bench-models")
    )
    p.add_argument(
        "--chat-hives",
        type=int,
        default=2,
        help="hives (a worker each) for the chats, pinned to the two cores in turn",
    )
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("needs two CPU cores to pin two hives to")
    load_before = os.getloadavg()
    started = time.perf_counter()
    figures: dict[str, Any] = {"load_before": load_before}
    with contextlib.ExitStack() as stack:
        plugin = least_busy_plugin(stack)
        say("one hive, one core: throughput")
        with cluster(args.models_dir, cores[:1]) as (url, _):
            throughput(url, 8)  # warm-up
            runs = [throughput(url, args.tokens) for _ in range(args.repeats)]
            figures["one_hive"] = [r for r, _ in runs]
        chat_cores = [cores[i % 2] for i in range(args.chat_hives)]
        say("two hives, a core each, prefix-aware (default): throughput")
        with cluster(args.models_dir, cores[:2]) as (url, _):
            if chat_cores == cores[:2]:
                say(f"{hives(args)}, prefix-aware (default): the chats")
                figures["prefix"] = multi_turn(url, args.conversations, args.turns)
            throughput(url, 8)
            runs = [throughput(url, args.tokens) for _ in range(args.repeats)]
            figures["two_hives"] = [r for r, _ in runs]
            figures["two_hives_jobs_per_worker"] = dict(runs[-1][1])
        if chat_cores != cores[:2]:
            say(f"{hives(args)}, prefix-aware (default): the chats")
            with cluster(args.models_dir, chat_cores) as (url, _):
                figures["prefix"] = multi_turn(url, args.conversations, args.turns)
        say(f"{hives(args)}, least busy: the chats")
        with cluster(args.models_dir, chat_cores, plugin) as (url, _):
            figures["least_busy"] = multi_turn(url, args.conversations, args.turns)
    figures["load_after"] = os.getloadavg()
    figures["seconds"] = time.perf_counter() - started
    print(report(figures, args))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


def hives(args: argparse.Namespace) -> str:
    """The chats' hives, in words."""
    if args.chat_hives == 2:
        return "two hives, a core each"
    return f"{args.chat_hives} hives on the two cores in turn"


def report(f: dict[str, Any], args: argparse.Namespace) -> str:
    one, two = statistics.median(f["one_hive"]), statistics.median(f["two_hives"])
    pre, lb = f["prefix"], f["least_busy"]

    def row(name: str, a: str, b: str, ratio: str, goal: str) -> str:
        return f"| {name} | {a} | {b} | {ratio} | {goal} |"

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:,.0f} ms"

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:.1f}" for v in values)

    command = (
        f"python benchmarks/bench_cluster.py --repeats {args.repeats} --tokens {args.tokens} "
        f"--conversations {args.conversations} --turns {args.turns}"
    )
    if args.chat_hives != 2:
        command += f" --chat-hives {args.chat_hives}"
    lines = [
        f"`{command}` ({f['seconds'] / 60:.1f} min; load average "
        f"{f['load_before'][0]:.2f} before, {f['load_after'][0]:.2f} after)",
        "",
        f"(a) {JOBS} concurrent jobs x {args.tokens} tokens, sampled with seeds; "
        f"median of {args.repeats} runs",
        "",
        "| | one hive (1 core) | two hives (1 core each) | ratio | goal |",
        "| --- | --- | --- | --- | --- |",
        row(
            "output tok/s",
            f"{one:.1f} ({runs(f['one_hive'])})",
            f"{two:.1f} ({runs(f['two_hives'])})",
            f"{two / one:.2f}x",
            ">= 1.8x",
        ),
        "",
        f"two hives, jobs per worker (last run): {f['two_hives_jobs_per_worker']}",
        "",
        f"(b) {args.conversations} conversations x {args.turns} turns at once over "
        f"{args.chat_hives} workers ({hives(args)}); TTFT over turns 2-{args.turns}",
        "",
        "| | prefix-aware (default) | least busy | ratio | goal |",
        "| --- | --- | --- | --- | --- |",
        row(
            "TTFT p50",
            ms(pre["ttft_p50"]),
            ms(lb["ttft_p50"]),
            f"{pre['ttft_p50'] / lb['ttft_p50']:.2f}x",
            "<= 0.5x",
        ),
        row(
            "TTFT p99",
            ms(pre["ttft_p99"]),
            ms(lb["ttft_p99"]),
            f"{pre['ttft_p99'] / lb['ttft_p99']:.2f}x",
            "",
        ),
        row(
            "later turns on a cached prefix",
            f"{pre['cached_share']:.0%}",
            f"{lb['cached_share']:.0%}",
            "",
            "",
        ),
        row(
            "first turn TTFT p50",
            ms(pre["first_turn_ttft_p50"]),
            ms(lb["first_turn_ttft_p50"]),
            "",
            "",
        ),
        row(
            "whole workload",
            f"{pre['seconds']:.1f} s",
            f"{lb['seconds']:.1f} s",
            f"{pre['seconds'] / lb['seconds']:.2f}x",
            "",
        ),
        "",
        f"last turn's prompt: {pre['last_prompt_tokens']:.0f} tokens (median); turns per "
        f"worker: prefix-aware {pre['turns_per_worker']}, least busy {lb['turns_per_worker']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
