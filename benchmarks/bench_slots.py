"""How many jobs a llama.cpp worker should decode at once: rbee with 2, 4, 8 and 16 slots
against llama-server ``-np 8``, side by side in one run.

On the default model, every process pinned to the same ``--threads`` CPUs. Each rbee
configuration is a queen of its own with ``RBEE_MAX_BATCH=N`` and a KV cache of N x 2,048
tokens (so a job gets the same room in each); llama-server (``--llama-server PATH``, built
by benchmarks/build_llama_server.sh; left out when missing) runs ``-np 8 -c 16384``.

Per round, in an order that rotates: one greedy job of ``--tokens`` tokens (decode tokens/s
after the first token), and 8 sampled jobs at once (temperature 0.7, seed i for job i;
output tokens/s of the whole run, first submission to last end). Medians (min-max) over
``--rounds``; the gain is the 8-at-once rate over the same engine's single stream.

    python benchmarks/bench_slots.py [--rounds 5] [--tokens 128] [--slots 2 4 8 16]
        [--llama-server PATH] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
from bench_engines import (
    concurrent,
    model_path,
    rbee_job,
    say,
    server_job,
    start_llama_server,
    stop,
)
from daemons import start_queen

Result = dict[str, Any]


def start_rbee(stack: contextlib.ExitStack, slots: int, tokens: int) -> str:
    """A queen of its own whose worker decodes ``slots`` jobs at once, loaded by a job."""
    home = stack.enter_context(tempfile.TemporaryDirectory(prefix="rbee-slots-"))
    env = {**os.environ, "RBEE_HOME": home, "HOME": home, "RBEE_MODELS_DIR": f"{home}/models"}
    env |= {"RBEE_MAX_BATCH": str(slots), "RBEE_KV_CACHE": f"{slots * 2048} tokens"}
    queen, url = start_queen(env, new_session=True)
    stack.callback(stop, queen)
    rbee_job(url, tokens, "llamacpp")
    workers = httpx.get(f"{url}/workers", timeout=10).json()["workers"]
    assert workers and workers[0]["slots"] == slots, workers
    return url


def spread(values: list[float]) -> str:
    v = sorted(values)
    mid = f"{statistics.median(v):.1f}"
    return mid if len(v) == 1 else f"{mid} ({v[0]:.1f}-{v[-1]:.1f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--slots", type=int, nargs="+", default=[2, 4, 8, 16])
    p.add_argument("--llama-server", help="llama.cpp's llama-server binary (else left out)")
    p.add_argument("--threads", type=int, default=2, help="CPUs every engine is pinned to")
    args = p.parse_args()
    cpus = sorted(os.sched_getaffinity(0))[: args.threads]
    os.sched_setaffinity(0, cpus)  # inherited by every process started below
    single: dict[str, Callable[[], Result]] = {}
    batch: dict[str, Callable[[], Result]] = {}
    with contextlib.ExitStack() as stack:
        for slots in args.slots:
            say(f"starting a queen with {slots} slots; its warm-up job loads the worker")
            url = start_rbee(stack, slots, args.tokens)
            name = f"rbee {slots} slots"
            single[name] = partial(rbee_job, url, args.tokens, "llamacpp")
            batch[name] = partial(concurrent, partial(rbee_job, url, args.tokens, "llamacpp", 0.7))
        if args.llama_server and os.access(args.llama_server, os.X_OK):
            logs = stack.enter_context(tempfile.TemporaryDirectory(prefix="rbee-slots-logs-"))
            url, _ = start_llama_server(
                stack, args.llama_server, model_path(), args.threads, logs, context=16384
            )
            server_job(url, args.tokens)  # warm-up
            single["llama-server -np 8"] = partial(server_job, url, args.tokens)
            batch["llama-server -np 8"] = partial(
                concurrent, partial(server_job, url, args.tokens, 0.7)
            )
        names = list(single)
        rates: dict[str, dict[str, list[float]]] = {n: {"one": [], "eight": []} for n in names}
        for round_ in range(args.rounds):
            turn = round_ % len(names)
            for name in names[turn:] + names[:turn]:
                rates[name]["one"].append(single[name]()["decode"])
                rates[name]["eight"].append(batch[name]()["rate"])
                say(
                    f"round {round_ + 1}: {name}: {rates[name]['one'][-1]:.1f} tok/s alone, "
                    f"{rates[name]['eight'][-1]:.1f} tok/s at 8"
                )
    print(f"{args.tokens} tokens a job, {args.rounds} rounds, {args.threads} threads\n")
    print("| engine | one stream tok/s | 8 at once tok/s | 8 at once / one | / llama-server |")
    print("| --- | --- | --- | --- | --- |")
    server = rates.get("llama-server -np 8")
    for name in names:
        one, eight = (statistics.median(rates[name][k]) for k in ("one", "eight"))
        vs = f"{eight / statistics.median(server['eight']):.2f}" if server else "-"
        print(
            f"| {name} | {spread(rates[name]['one'])} | {spread(rates[name]['eight'])} "
            f"| {eight / one:.2f} | {vs} |"
        )


if __name__ == "__main__":
    main()
